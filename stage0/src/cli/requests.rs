//! Typed requests: what `run`, `prepare`, `run-prepared` and `fetch` were asked to do, as the
//! command line said it, before anything is resolved. The commands read fields, never flag
//! names.
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::image::PullPolicy;
use crate::stage1::Stage1Source;

/// `--mount volume=NAME,target=PATH`.
#[derive(Debug, Clone, PartialEq)]
pub struct MountArg {
    pub volume: String,
    pub target: String,
}

/// One image and the flags that followed it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppRequest {
    pub image: String,
    /// Arguments after `--`, appended to the exec.
    pub args: Vec<String>,
    pub signature: Option<String>,
    pub exec: Option<String>,
    pub working_dir: Option<String>,
    pub readonly_rootfs: Option<String>,
    pub mounts: Vec<MountArg>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub supplementary_gids: Vec<String>,
    pub name: Option<String>,
    pub annotations: Vec<String>,
    pub user_annotations: Vec<String>,
    pub user_labels: Vec<String>,
    pub environment: Vec<String>,
    pub memory: Option<String>,
    pub cpu: Option<String>,
    pub cpu_shares: Option<String>,
    /// The flag as spelt (`caps-retain` or the deprecated `cap-retain`) and its value.
    pub caps_retain: Option<(String, String)>,
    pub caps_remove: Option<(String, String)>,
    pub seccomp: Option<String>,
    pub oom_score_adj: Option<String>,
}

impl AppRequest {
    pub fn new(image: &str) -> AppRequest {
        AppRequest {
            image: image.to_string(),
            ..AppRequest::default()
        }
    }
}

/// `--pull-policy` and its deprecated spellings `--store-only` and `--no-store`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullFlags {
    pub policy: Option<String>,
    pub store_only: Option<bool>,
    pub no_store: Option<bool>,
}

impl PullFlags {
    /// The policy these flags ask for; `default` when none is given. Warns about the
    /// deprecated spellings, as rkt does.
    pub fn resolve(&self, default: PullPolicy) -> Result<PullPolicy> {
        if self.store_only.is_some() {
            eprintln!("Flag --store-only has been deprecated, please use --pull-policy=never");
        }
        if self.no_store.is_some() {
            eprintln!("Flag --no-store has been deprecated, please use --pull-policy=update");
        }
        let (store_only, no_store) = (
            self.store_only.unwrap_or(false),
            self.no_store.unwrap_or(false),
        );
        if store_only && no_store {
            bail!("both --store-only and --no-store specified");
        }
        if store_only {
            return Ok(PullPolicy::Never);
        }
        if no_store {
            return Ok(PullPolicy::Update);
        }
        match &self.policy {
            Some(p) => PullPolicy::parse(p),
            None => Ok(default),
        }
    }

    /// Whether images may be fetched by a `--pod-manifest` run (rkt refuses `never` and
    /// `update`, and their old spellings, there).
    fn conflicts_with_pod_manifest(&self) -> bool {
        self.store_only == Some(true)
            || self.no_store == Some(true)
            || matches!(self.policy.as_deref(), Some("never" | "update"))
    }
}

/// The `--stage1-*` flags: at most one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stage1Choice {
    chosen: Option<(&'static str, Stage1Source)>,
}

impl Stage1Choice {
    pub fn set(&mut self, flag: &'static str, source: Stage1Source) -> Result<()> {
        match &self.chosen {
            Some((prev, _)) if *prev == flag => bail!("--{flag} already used"),
            Some((prev, _)) => bail!("flags --{flag} and --{prev} are mutually exclusive"),
            None => self.chosen = Some((flag, source)),
        }
        Ok(())
    }

    pub fn source(&self) -> Stage1Source {
        self.chosen
            .as_ref()
            .map_or(Stage1Source::Default, |(_, s)| s.clone())
    }
}

/// What `run` and `prepare` make a pod from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodRequest {
    pub apps: Vec<AppRequest>,
    /// `--mount`s before any image: for every app.
    pub mounts: Vec<MountArg>,
    pub stage1: Stage1Choice,
    pub volumes: Vec<String>,
    pub ports: Vec<String>,
    pub inherit_env: bool,
    pub no_overlay: bool,
    pub private_users: bool,
    pub set_env: Vec<String>,
    pub set_env_file: Vec<String>,
    pub pull: PullFlags,
    pub pod_manifest: Option<PathBuf>,
    /// `prepare --quiet`.
    pub quiet: bool,
}

/// How a prepared pod starts: the options shared by `run` and `run-prepared`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaunchOptions {
    pub net: Option<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_opt: Vec<String>,
    pub dns_domain: Option<String>,
    pub hosts_entries: Vec<String>,
    pub interactive: bool,
    pub mds_register: bool,
    pub hostname: Option<String>,
    pub ipc: Option<String>,
}

/// `rkt run` (and, with only the pod part used, `rkt prepare`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRequest {
    pub pod: PodRequest,
    pub launch: LaunchOptions,
    pub uuid_file_save: Option<PathBuf>,
}

/// `rkt fetch`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchRequest {
    pub images: Vec<AppRequest>,
    pub pull: PullFlags,
    pub full: bool,
}

impl RunRequest {
    /// rkt's flag-combination checks, in rkt's order (run.go). `prepare` has no launch
    /// options, so only its pod part is checked.
    pub fn validate(&self, prepare: bool) -> Result<()> {
        let (pod, launch) = (&self.pod, &self.launch);
        if pod.pull.store_only == Some(true) && pod.pull.no_store == Some(true) {
            bail!("both --store-only and --no-store specified");
        }
        if pod.private_users && !std::path::Path::new("/proc/self/uid_map").exists() {
            bail!(
                "--private-users is not supported, kernel compiled without user namespace support"
            );
        }
        let nets: Vec<&str> = launch
            .net
            .as_deref()
            .map(|n| n.split(',').collect())
            .unwrap_or_default();
        if !pod.ports.is_empty() {
            if nets.contains(&"none") {
                bail!("--port flag does not work with 'none' networking");
            }
            if nets.contains(&"host") {
                bail!("--port flag does not work with 'host' networking");
            }
        }
        if launch.mds_register && nets.contains(&"none") {
            bail!("--mds-register flag does not work with --net=none. Please use 'host', 'default' or an equivalent network");
        }
        if pod.pod_manifest.is_some()
            && (!pod.apps.is_empty()
                || !pod.volumes.is_empty()
                || !pod.mounts.is_empty()
                || !pod.ports.is_empty()
                || pod.pull.conflicts_with_pod_manifest()
                || pod.inherit_env
                || !pod.set_env.is_empty()
                || !pod.set_env_file.is_empty())
        {
            bail!("conflicting flags set with --pod-manifest (see --help)");
        }
        if !prepare && launch.interactive && pod.apps.len() > 1 {
            bail!("interactive option only supports one image");
        }
        if pod.apps.is_empty() && pod.pod_manifest.is_none() {
            bail!("must provide at least one image or specify the pod manifest");
        }
        Ok(())
    }
}
