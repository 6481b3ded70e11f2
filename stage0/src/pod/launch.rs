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
        };
        Ok(Launch { dns, flags })
    }
}

/// `--net` entries: `name[:args]`, unique names, `host`/`none`/`all` without arguments. Only
/// the built-in networks exist until CNI networking lands.
pub fn net_list(value: Option<&str>) -> Result<Vec<String>> {
    let Some(value) = value else {
        return Ok(vec!["default".into()]);
    };
    let mut names: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for item in value.split(',') {
        let (name, args) = match item.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (item, None),
        };
        if name.is_empty() {
            bail!("netname must not be empty");
        }
        if names.contains(&name) {
            bail!("found duplicate netname {name:?}");
        }
        if args.is_some() && matches!(name, "host" | "none" | "all") {
            bail!("arguments are not supported by special netname {name:?}");
        }
        if !matches!(
            name,
            "host" | "none" | "all" | "default" | "default-restricted"
        ) {
            bail!(
                "networks not found: {name} (only default, default-restricted, host and none exist until CNI networks are supported)"
            );
        }
        names.push(name);
        out.push(item.to_string());
    }
    Ok(out)
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
    crate::sys::private_mount_namespace().context("error setting up stage1")?;
    let guard = setup::mount_overlays(&dir, store, manifest).context("error setting up stage1")?;
    launch
        .dns
        .write(&dir.join(STAGE1_ROOTFS))
        .context("error writing name resolution files")?;
    let stage1 = Stage1::of_pod(store, &dir)?;
    let argv = stage1.run_argv(&launch.flags, &pod.uuid.to_string(), &|w| {
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
        assert_eq!(net_list(Some("default,host")).unwrap(), ["default", "host"]);
        assert!(net_list(Some("host:x=1")).is_err());
        assert!(net_list(Some("default,default")).is_err());
        assert!(net_list(Some(",")).is_err());
        assert!(net_list(Some("bogus"))
            .unwrap_err()
            .to_string()
            .contains("networks not found"));
    }
}
