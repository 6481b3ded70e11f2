//! Starting a prepared pod, shared by `run` and `run-prepared`: the launch options become the
//! name resolution files and the stage1 `run` flags; the pod's filesystems are mounted and
//! rkt becomes stage1 (docs/stage-contract.md, "run").
use aci::schema::PodManifest;
use anyhow::{bail, Context, Result};
use store::Store;

use super::dns::{self, DnsConfig};
use super::{setup, Pod, StateDir};
use crate::cli::requests::LaunchOptions;
use crate::contract::STAGE1_ROOTFS;
use crate::globals::Globals;
use crate::output::Log;
use crate::stage1::{Entrypoint, RunFlags, Stage1};

/// What a pod is started with.
pub struct Launch {
    pub dns: DnsConfig,
    pub flags: RunFlags,
    /// Register the pod with the metadata service before it starts.
    pub mds_register: bool,
}

impl Launch {
    /// Checks the options (before any pod directory exists) and turns them into what stage1
    /// needs.
    pub fn new(opts: &LaunchOptions, globals: &Globals) -> Result<Launch> {
        let net = net_list(opts.net.as_deref())?;
        fn refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let dns = DnsConfig::parse(
            &refs(&opts.dns),
            &refs(&opts.dns_search),
            &refs(&opts.dns_opt),
            opts.dns_domain.as_deref(),
            &refs(&opts.hosts_entries),
        )
        .context("error with dns flags")?;
        let hostname = dns::hostname_flag(opts.hostname.as_deref())?;
        let flags = RunFlags {
            debug: globals.debug,
            net: net.join(","),
            interactive: opts.interactive,
            local_config: globals.local_config.clone(),
            hostname,
            dns_conf_mode: Some(dns.conf_mode()),
            disable_capabilities: globals.insecure.skip_capabilities(),
            disable_paths: globals.insecure.skip_paths(),
            disable_seccomp: globals.insecure.skip_seccomp(),
            ipc: opts.ipc.clone(),
            private_users: None,
            mds_token: None,
        };
        Ok(Launch {
            dns,
            flags,
            mds_register: opts.mds_register,
        })
    }
}

/// `--net` entries: `name[:args]`, unique names, `host`/`all` without arguments, `host` and
/// `none` alone. Which names exist is stage1's to check, against the network configurations
/// (docs/stage-contract.md, "Networking").
pub fn net_list(value: Option<&str>) -> Result<Vec<String>> {
    let Some(value) = value else {
        return Ok(vec!["default".into()]);
    };
    let mut names: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for item in value.split(',') {
        let mut parts = item.split(':');
        let name = parts.next().unwrap_or_default();
        let args = parts.next();
        if name.is_empty() {
            bail!("netname must not be empty");
        }
        if parts.next().is_some() {
            bail!("network {name:?} provided with invalid arguments: {item:?} (use NAME:ARG=VALUE;ARG=VALUE)");
        }
        if names.contains(&name) {
            bail!("found duplicate netname {name:?}");
        }
        if args.is_some() && matches!(name, "host" | "none" | "all") {
            bail!("arguments are not supported by special netname {name:?}");
        }
        names.push(name);
        out.push(item.to_string());
    }
    if let Some(special) = names.iter().find(|n| matches!(**n, "host" | "none")) {
        if names.len() > 1 {
            bail!("--net={special} cannot be combined with other networks");
        }
    }
    Ok(out)
}

/// Registers the pod and its apps' image manifests with the metadata service; returns the
/// token stage1 gives the apps (docs/stage-contract.md, "Metadata service").
fn register_with_mds(
    dir: &std::path::Path,
    run_dir: &std::path::Path,
    uuid: &str,
    manifest: &PodManifest,
) -> Result<String> {
    let read = |path: std::path::PathBuf| {
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let pod_manifest = read(dir.join(crate::contract::POD_MANIFEST))?;
    let apps = manifest
        .apps
        .iter()
        .map(|a| {
            let image = read(
                dir.join(crate::contract::APPS_INFO)
                    .join(&a.name)
                    .join("manifest"),
            )?;
            Ok((a.name.clone(), image))
        })
        .collect::<Result<Vec<_>>>()?;
    let reg = crate::mds::register(uuid, run_dir, &pod_manifest, &apps)
        .context("failed to register the pod with the metadata service")?;
    std::fs::write(dir.join(crate::contract::MDS_REGISTERED), b"")
        .context("cannot mark the pod as registered")?;
    if reg.port != crate::mds::DEFAULT_PORT {
        std::fs::write(dir.join(crate::contract::MDS_PORT), reg.port.to_string())
            .context("cannot record the metadata service's port")?;
    }
    Ok(reg.token)
}

/// The user namespace range the pod was prepared with, if any.
fn read_id_range(dir: &std::path::Path) -> Result<Option<String>> {
    let path = dir.join(crate::contract::PRIVATE_USERS_PREPARED);
    match std::fs::read_to_string(&path) {
        Ok(range) => Ok(Some(range.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Mounts the pod's filesystems, moves it to `run/` and becomes stage1.
pub fn launch(
    pod: &mut Pod,
    store: &Store,
    manifest: &PodManifest,
    launch: &Launch,
    log: &Log,
) -> Result<i32> {
    let dir = pod.path();
    // The pod's overlays are mounted in a mount namespace of the pod's own, which stage1
    // inherits: the kernel drops them when the pod's last process exits, and an exited pod
    // holds no mount on the host (docs/stage-contract.md, "Mount namespace").
    // The pod's network namespace is bound below NETNS_DIR by stage1, and must be seen from
    // the host, where `rkt gc` takes the network down.
    let networked = launch
        .flags
        .net
        .split(',')
        .any(|n| !matches!(n.split(':').next(), Some("host" | "none")));
    let shared = networked.then_some(std::path::Path::new(crate::contract::NETNS_DIR));
    crate::sys::private_mount_namespace(shared).context("error setting up stage1")?;
    let guard = setup::mount_overlays(&dir, store, manifest).context("error setting up stage1")?;
    launch
        .dns
        .write(&dir.join(STAGE1_ROOTFS))
        .context("error writing name resolution files")?;
    let stage1 = Stage1::of_pod(store, &dir)?;
    let mut flags = launch.flags.clone();
    flags.private_users = read_id_range(&dir)?;
    if launch.mds_register {
        // The service finds the pod's addresses where the pod will run: pods/run/<uuid>.
        let run_dir = dir
            .parent()
            .and_then(|states| states.parent())
            .map(|pods| pods.join("run").join(pod.uuid.to_string()))
            .context("the pod directory has no parent")?;
        flags.mds_token = Some(register_with_mds(
            &dir,
            &run_dir,
            &pod.uuid.to_string(),
            manifest,
        )?);
    }
    let argv = stage1.run_argv(&flags, &pod.uuid.to_string(), &|w| {
        log.print(format!("warning: {w}"))
    })?;
    // Loaded and checked before the pod counts as running.
    let program = stage1.program(store, Entrypoint::Run)?;
    pod.move_to(StateDir::Run)
        .context("unable to transition to run")?;
    guard.disarm();
    let dir = pod.path();
    log.debug(format!("Execing {argv:?}"));
    let err = Stage1::exec_run(&program, &dir, &argv, pod.lock_fd());
    Err(err.context("stage0: execution of stage1 failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_lists_follow_rkt() {
        assert_eq!(net_list(None).unwrap(), ["default"]);
        assert!(net_list(Some("default,host")).is_err());
        assert!(net_list(Some("host:x=1")).is_err());
        assert!(net_list(Some("default,default")).is_err());
        assert!(net_list(Some(",")).is_err());
        assert!(net_list(Some("a:b:c")).is_err());
        assert!(net_list(Some("none,default")).is_err());
        assert_eq!(
            net_list(Some("mynet:IP=10.1.0.5,default")).unwrap(),
            ["mynet:IP=10.1.0.5", "default"]
        );
    }
}
