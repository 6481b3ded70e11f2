//! `rkt run-prepared UUID`: run a pod made by `rkt prepare`.
use anyhow::{bail, Context, Result};

use crate::cli::RunPreparedArgs;
use crate::globals::Globals;
use crate::output::Log;
use crate::pod::dns::{self, DnsConfig};
use crate::pod::{setup, PodState, Pods, StateDir};
use crate::stage1::RunFlags;
use crate::sys;

pub fn run(globals: &Globals, args: &RunPreparedArgs, log: &Log) -> Result<i32> {
    if sys::euid() != 0 {
        bail!("cannot run as unprivileged user");
    }
    let Some(uuid) = &args.uuid else {
        bail!("missing pod UUID: usage: rkt run-prepared UUID");
    };
    let mut pod = Pods::new(&globals.dir)
        .find(uuid)
        .context("problem retrieving pod")?;
    if pod.state() != PodState::Prepared {
        bail!("pod {:?} is not prepared", pod.uuid.to_string());
    }
    let manifest = pod.manifest().context("cannot read pod manifest")?;
    if args.interactive.unwrap_or(false) && manifest.apps.len() > 1 {
        bail!("interactive option only supports pods with one app");
    }
    if args.mds_register.unwrap_or(false) {
        bail!("--mds-register: the metadata service is not supported by this rkt yet");
    }
    if setup::uses_overlay(&pod.path()) && !super::run::overlay_supported(&globals.dir, log) {
        bail!("unable to run prepared overlay-enabled pod: overlay not supported");
    }
    fn dns_refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let dns = DnsConfig::parse(
        &dns_refs(&args.dns),
        &dns_refs(&args.dns_search),
        &dns_refs(&args.dns_opt),
        args.dns_domain.as_deref(),
        &dns_refs(&args.hosts_entry),
    )
    .context("error with dns flags")?;
    let hostname = dns::hostname_flag(args.hostname.as_deref())?;
    let net = super::run::net_list(args.net.as_deref())?;
    // `status`/`list` probe the lock for an instant: retry briefly. A concurrent run-prepared
    // of the same pod keeps it and wins.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !pod.lock(false)? {
        if std::time::Instant::now() >= deadline {
            bail!(
                "pod {:?} is being run by another process",
                pod.uuid.to_string()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    pod.refresh_state()?;
    if pod.state_dir() != StateDir::Prepared {
        bail!("pod {:?} is not prepared", pod.uuid.to_string());
    }
    let store = globals.open_store()?;
    super::run::check_volumes(&store, &manifest)?;
    let flags = RunFlags {
        debug: globals.debug,
        net: net.join(","),
        interactive: args.interactive.unwrap_or(false),
        local_config: globals.local_config.clone(),
        hostname,
        dns_conf_mode: Some(dns.conf_mode()),
        disable_capabilities: globals.insecure.skip_capabilities(),
        disable_paths: globals.insecure.skip_paths(),
        disable_seccomp: globals.insecure.skip_seccomp(),
        ipc: args.ipc.clone(),
    };
    super::run::launch(&mut pod, &store, &manifest, &dns, &flags, log)
}
