//! rkt's image-list grammar for `run`, `prepare` and `fetch`, parsed once into typed requests
//! (docs/cli.md):
//!
//! ```text
//! [flags] IMAGE [flags] [-- ARGS... [---]] IMAGE ...
//! ```
//!
//! At each position flags are parsed with the command's whole flag set (global, pod-level and
//! per-app flags) until a non-flag, which is an image and starts a new app. Per-app flags bind
//! to the most recent image; `--mount` before any image applies to every app; `--` opens the
//! image's arguments and `---` closes them (one `--` list per image). Flags follow pflag: a
//! boolean takes `--flag` or `--flag=BOOL` only; other flags take `--flag=V` or `--flag V`.
//!
//! Every flag is a [`Flag`] variant: the table below gives its spelling, and [`apply`] the
//! request field it sets, so a flag the table knows but nothing reads cannot compile.
use anyhow::{anyhow, bail, Result};

use super::flags::{parse_bool, parse_ratio, parse_size};
use super::requests::{AppRequest, FetchRequest, MountArg, RunRequest};
use super::{GlobalArgs, Insecure};
use crate::stage1::Stage1Source;

mod table;

pub use table::{flags_of, Flag, FlagDef, Kind, FLAGS};
use table::{FETCH, PREPARE, RUN};
use Kind::{Bool, OptionalValue, Value};

/// Which command's flag set is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppsCommand {
    Run,
    Prepare,
    Fetch,
}

impl AppsCommand {
    pub(super) fn mask(self) -> u8 {
        match self {
            AppsCommand::Run => RUN,
            AppsCommand::Prepare => PREPARE,
            AppsCommand::Fetch => FETCH,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AppsCommand::Run => "run",
            AppsCommand::Prepare => "prepare",
            AppsCommand::Fetch => "fetch",
        }
    }
}

/// What the grammar produced: global flags and the command's request.
#[derive(Debug, Default)]
pub struct Parsed<R> {
    pub globals: GlobalArgs,
    pub request: R,
    pub help: bool,
}

/// Where parsed flags go: the command's request (run, prepare and fetch share the apps).
trait Target {
    fn apps(&mut self) -> &mut Vec<AppRequest>;
    /// A `--mount` before any image: for every app.
    fn add_pod_mount(&mut self, mount: MountArg);
    fn set(&mut self, flag: Flag, value: String) -> Result<()>;
}

impl Target for RunRequest {
    fn apps(&mut self) -> &mut Vec<AppRequest> {
        &mut self.pod.apps
    }

    fn add_pod_mount(&mut self, mount: MountArg) {
        self.pod.mounts.push(mount);
    }

    fn set(&mut self, flag: Flag, value: String) -> Result<()> {
        let (pod, launch) = (&mut self.pod, &mut self.launch);
        let on = || value == "true";
        match flag {
            Flag::Stage1Url => pod
                .stage1
                .set("stage1-url", Stage1Source::Url(value.clone()))?,
            Flag::Stage1Path => pod
                .stage1
                .set("stage1-path", Stage1Source::Path(value.clone().into()))?,
            Flag::Stage1Name => pod
                .stage1
                .set("stage1-name", Stage1Source::Name(value.clone()))?,
            Flag::Stage1Hash => pod
                .stage1
                .set("stage1-hash", Stage1Source::Hash(value.clone()))?,
            Flag::Stage1FromDir => pod
                .stage1
                .set("stage1-from-dir", Stage1Source::FromDir(value.clone()))?,
            Flag::Port => pod.ports.push(value),
            Flag::InheritEnv => pod.inherit_env = on(),
            Flag::NoOverlay => pod.no_overlay = on(),
            Flag::PrivateUsers => pod.private_users = on(),
            Flag::SetEnv => pod.set_env.push(value),
            Flag::SetEnvFile => pod.set_env_file.push(value),
            Flag::StoreOnly => pod.pull.store_only = Some(on()),
            Flag::NoStore => pod.pull.no_store = Some(on()),
            Flag::PullPolicy => pod.pull.policy = Some(value),
            Flag::PodManifest => pod.pod_manifest = Some(value.into()),
            Flag::Volume => pod.volumes.push(value),
            Flag::Quiet => pod.quiet = on(),
            Flag::Net => launch.net = Some(value),
            Flag::Interactive => launch.interactive = on(),
            Flag::Dns => launch.dns.push(value),
            Flag::DnsSearch => launch.dns_search.push(value),
            Flag::DnsOpt => launch.dns_opt.push(value),
            Flag::DnsDomain => launch.dns_domain = Some(value),
            Flag::HostsEntry => launch.hosts_entries.push(value),
            Flag::MdsRegister => launch.mds_register = on(),
            Flag::Hostname => launch.hostname = Some(value),
            Flag::Ipc => launch.ipc = Some(value),
            Flag::UuidFileSave => self.uuid_file_save = Some(value.into()),
            _ => bail!("bug: --{} reached the pod flags", name_of(flag)),
        }
        Ok(())
    }
}

impl Target for FetchRequest {
    fn apps(&mut self) -> &mut Vec<AppRequest> {
        &mut self.images
    }

    /// `--mount` is not a flag of `fetch`: the table never lets it here.
    fn add_pod_mount(&mut self, _mount: MountArg) {}

    fn set(&mut self, flag: Flag, value: String) -> Result<()> {
        let on = value == "true";
        match flag {
            Flag::StoreOnly => self.pull.store_only = Some(on),
            Flag::NoStore => self.pull.no_store = Some(on),
            Flag::PullPolicy => self.pull.policy = Some(value),
            Flag::Full => self.full = on,
            _ => bail!("bug: --{} reached the fetch flags", name_of(flag)),
        }
        Ok(())
    }
}

fn name_of(flag: Flag) -> &'static str {
    FLAGS
        .iter()
        .find(|d| d.flag == flag)
        .map_or("?", |d| d.name)
}

/// Parses the arguments of `run` or `prepare` (everything after the command path).
pub fn parse_run(cmd: AppsCommand, args: &[String]) -> Result<Parsed<RunRequest>> {
    parse(cmd, args)
}

/// Parses the arguments of `fetch`.
pub fn parse_fetch(args: &[String]) -> Result<Parsed<FetchRequest>> {
    parse(AppsCommand::Fetch, args)
}

fn parse<R: Target + Default>(cmd: AppsCommand, args: &[String]) -> Result<Parsed<R>> {
    let mut out = Parsed::<R>::default();
    let mut in_app_args = false;
    let mut apps_at_last_args = 0usize;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg.is_empty() {
            continue;
        }
        if in_app_args {
            if arg == "---" {
                in_app_args = false;
            } else if let Some(app) = out.request.apps().last_mut() {
                app.args.push(arg.clone());
            }
            continue;
        }
        match arg.as_str() {
            "--" => {
                if cmd == AppsCommand::Fetch {
                    bail!("app arguments unsupported");
                }
                let apps = out.request.apps().len();
                if apps_at_last_args == apps {
                    if apps == 0 {
                        bail!("an image is required before any app arguments");
                    }
                    bail!("only one set of app arguments allowed per image");
                }
                apps_at_last_args = apps;
                in_app_args = true;
            }
            // Not an image: a stray list terminator.
            "---" => {}
            _ if arg.starts_with('-') && arg.len() > 1 => {
                let (name, inline) = split_flag(arg)?;
                let def = flags_of(cmd)
                    .find(|d| d.name == name)
                    .ok_or_else(|| unknown_flag(arg, name))?;
                let value = match (def.kind, inline) {
                    (Bool, None) => "true".to_string(),
                    (Bool, Some(v)) => parse_bool(&v)
                        .map_err(|_| {
                            anyhow!("invalid argument {v:?} for \"--{name}\" flag: strconv.ParseBool: parsing {v:?}: invalid syntax")
                        })?
                        .to_string(),
                    (OptionalValue(default), None) => default.to_string(),
                    (_, Some(v)) => v,
                    (Value, None) => {
                        let v = args
                            .get(i)
                            .ok_or_else(|| anyhow!("flag needs an argument: --{name}"))?;
                        i += 1;
                        v.clone()
                    }
                };
                apply(&mut out, def.flag, value)?;
            }
            _ => out.request.apps().push(AppRequest::new(arg)),
        }
    }
    Ok(out)
}

fn split_flag(arg: &str) -> Result<(&str, Option<String>)> {
    let body = arg
        .strip_prefix("--")
        .or_else(|| arg.strip_prefix('-'))
        .unwrap_or(arg);
    if arg.starts_with("--") || body == "h" {
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        return Ok((if name == "h" { "help" } else { name }, value));
    }
    bail!(
        "unknown shorthand flag: '{}' in {arg}",
        body.chars().next().unwrap_or('-')
    )
}

fn unknown_flag(arg: &str, name: &str) -> anyhow::Error {
    if arg.starts_with("--") {
        anyhow!("unknown flag: --{name}")
    } else {
        anyhow!("unknown shorthand flag: '{name}' in {arg}")
    }
}

/// Stores one flag's value where its [`Flag`] says.
fn apply<R: Target>(out: &mut Parsed<R>, flag: Flag, value: String) -> Result<()> {
    let g = &mut out.globals;
    let on = || parse_bool(&value).unwrap_or(false);
    match flag {
        Flag::Debug => g.debug = Some(on()),
        Flag::Dir => g.dir = Some(value.into()),
        Flag::InsecureOptions => g.insecure_options = Some(Insecure::parse(&value)?),
        Flag::SystemConfig => g.system_config = Some(value.into()),
        Flag::LocalConfig => g.local_config = Some(value.into()),
        Flag::UserConfig => g.user_config = Some(value.into()),
        Flag::TrustKeysFromHttps => g.trust_keys_from_https = Some(on()),
        Flag::ImageSizeLimit => g.image_size_limit = Some(parse_size(&value)?),
        Flag::ImageExpansionLimit => g.image_expansion_limit = Some(parse_ratio(&value)?),
        Flag::Help => out.help = on(),
        Flag::Mount => {
            let mount = parse_mount(&value)?;
            match out.request.apps().last_mut() {
                Some(app) => app.mounts.push(mount),
                None => out.request.add_pod_mount(mount),
            }
        }
        Flag::Signature
        | Flag::Exec
        | Flag::WorkingDir
        | Flag::ReadonlyRootfs
        | Flag::User
        | Flag::Group
        | Flag::SupplementaryGids
        | Flag::Name
        | Flag::Annotation
        | Flag::UserAnnotation
        | Flag::UserLabel
        | Flag::Environment
        | Flag::Memory
        | Flag::Cpu
        | Flag::CpuShares
        | Flag::CapsRetain
        | Flag::CapsRemove
        | Flag::CapRetain
        | Flag::CapRemove
        | Flag::Seccomp
        | Flag::OomScoreAdj
        | Flag::Stdin
        | Flag::Stdout
        | Flag::Stderr => {
            let name = name_of(flag);
            let app = out
                .request
                .apps()
                .last_mut()
                .ok_or_else(|| anyhow!("--{name} must follow an image"))?;
            app.set(flag, name, value)?;
        }
        Flag::Stage1Url
        | Flag::Stage1Path
        | Flag::Stage1Name
        | Flag::Stage1Hash
        | Flag::Stage1FromDir
        | Flag::Port
        | Flag::Net
        | Flag::InheritEnv
        | Flag::NoOverlay
        | Flag::PrivateUsers
        | Flag::SetEnv
        | Flag::SetEnvFile
        | Flag::Interactive
        | Flag::Dns
        | Flag::DnsSearch
        | Flag::DnsOpt
        | Flag::DnsDomain
        | Flag::HostsEntry
        | Flag::StoreOnly
        | Flag::NoStore
        | Flag::PullPolicy
        | Flag::PodManifest
        | Flag::MdsRegister
        | Flag::UuidFileSave
        | Flag::Hostname
        | Flag::Volume
        | Flag::Ipc
        | Flag::Quiet
        | Flag::Full => out.request.set(flag, value)?,
    }
    Ok(())
}

impl AppRequest {
    /// Per-app flags (see [`Flag`]).
    fn set(&mut self, flag: Flag, name: &str, value: String) -> Result<()> {
        let once = |slot: &mut Option<String>, value: String| {
            if slot.is_some() {
                bail!("--{name} specified multiple times for the same image");
            }
            *slot = Some(value);
            Ok(())
        };
        match flag {
            Flag::Signature => once(&mut self.signature, value)?,
            Flag::Exec => once(&mut self.exec, value)?,
            Flag::WorkingDir => self.working_dir = Some(value),
            Flag::ReadonlyRootfs => self.readonly_rootfs = Some(value),
            Flag::User => self.user = Some(value),
            Flag::Group => self.group = Some(value),
            Flag::SupplementaryGids => self.supplementary_gids.push(value),
            Flag::Name => self.name = Some(value),
            Flag::Annotation => self.annotations.push(value),
            Flag::UserAnnotation => self.user_annotations.push(value),
            Flag::UserLabel => self.user_labels.push(value),
            Flag::Environment => self.environment.push(value),
            Flag::Memory => self.memory = Some(value),
            Flag::Cpu => self.cpu = Some(value),
            Flag::CpuShares => self.cpu_shares = Some(value),
            // rkt registers the deprecated spellings with the same setter: the later wins.
            Flag::CapsRetain | Flag::CapRetain => self.caps_retain = Some((name.into(), value)),
            Flag::CapsRemove | Flag::CapRemove => self.caps_remove = Some((name.into(), value)),
            Flag::Seccomp => self.seccomp = Some(value),
            Flag::OomScoreAdj => self.oom_score_adj = Some(value),
            Flag::Stdin | Flag::Stdout | Flag::Stderr => bail!(
                "--{name} is part of rkt's experimental app sandbox, which this rkt does not have"
            ),
            _ => bail!("bug: --{name} reached the app flags"),
        }
        Ok(())
    }
}

/// `volume=NAME,target=PATH` (rkt accepts the keys in any order, each once).
pub fn parse_mount(s: &str) -> Result<MountArg> {
    let mut volume = None;
    let mut target = None;
    for part in s.split(',') {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let slot = match key {
            "volume" => &mut volume,
            "target" => &mut target,
            _ => bail!(
                "unknown mount parameter {key:?} in --mount {s:?}: use volume=NAME,target=PATH"
            ),
        };
        if slot.is_some() {
            bail!("--mount {s:?} gives {key} more than once");
        }
        *slot = Some(value.to_string());
    }
    let volume = volume.ok_or_else(|| anyhow!("--mount {s:?} has no volume=NAME"))?;
    if !aci::validate::is_ac_name(&volume) {
        bail!("invalid volume name {volume:?} in --mount flag {s:?}: volume names are lower-case letters, digits and dashes");
    }
    let target = target.ok_or_else(|| anyhow!("--mount {s:?} has no target=PATH"))?;
    if target.is_empty() {
        bail!("--mount {s:?} has an empty target");
    }
    Ok(MountArg { volume, target })
}

#[cfg(test)]
mod tests;
