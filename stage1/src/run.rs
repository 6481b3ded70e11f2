//! The `run` entrypoint: read the pod, plan it, create its namespaces and PID 1, then stay as
//! its parent holding the pod lock until it exits (docs/stage-contract.md, "The pod lock").
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Instant;

use aci::schema::{App, ImageManifest, PodManifest};
use anyhow::{bail, Context, Result};

use crate::args::RunArgs;
use crate::console::{Console, ConsoleSlots};
use crate::contract::{
    LOCK_FD_ENV, PID_FILE, POD_MANIFEST, RKT_HOSTS, RKT_RESOLV_CONF, STAGE1_ROOTFS, STAGE2_DIR,
    STOP_TIMEOUT_SECS,
};
use crate::handoff::{AfterExit, Handoff, HAND_OVER_AFTER};
use crate::plan::{self, AppPlan, PodSettings};
use crate::setup::{self, Namespaces};
use crate::{facts, net, sys};

pub fn run(args: &RunArgs) -> Result<i32> {
    // Held (open, locked by stage0) until this process exits: that is what marks the pod exited.
    let _lock = match std::env::var(LOCK_FD_ENV) {
        Ok(v) => {
            let fd: i32 = v
                .parse()
                .with_context(|| format!("invalid {LOCK_FD_ENV} {v:?}"))?;
            Some(sys::adopt_lock_fd(fd)?)
        }
        Err(_) => None,
    };
    let id_range = args
        .private_users
        .as_deref()
        .map(parse_id_range)
        .transpose()?;
    if args.mutable {
        bail!("mutable pods are not supported by this stage1");
    }
    let ipc = match args.ipc.as_deref() {
        None | Some("auto") | Some("private") => true,
        Some("parent") => false,
        Some(other) => bail!("invalid --ipc value {other:?}: use auto, private or parent"),
    };
    let pod_dir = std::env::current_dir().context("cannot get the pod directory")?;
    let manifest = read_pod_manifest(&pod_dir)?;
    let s1root = pod_dir.join(STAGE1_ROOTFS);
    // Networking first: a network's DNS decides the pod's resolv.conf. Anything failing after
    // it takes the network down again (docs/stage-contract.md, "Networking").
    let net_mode = net::conf::parse_mode(&args.net)?;
    let forwards = net::forwards(&manifest, &|name| runtime_app(&manifest, &s1root, name))?;
    let local_config = Path::new(args.local_config.as_deref().unwrap_or("/etc/rkt"));
    let net_ctx = net::NetContext {
        pod_dir: &pod_dir,
        s1root: &s1root,
        uuid: &args.uuid,
        local_config,
        debug: args.debug,
    };
    if !forwards.is_empty() && !matches!(net_mode, net::NetMode::Contained(_)) {
        bail!("--port needs a contained network: it does not work with --net=host or --net=none");
    }
    let network = net::setup(
        &net_ctx,
        &net_mode,
        &forwards,
        net::dns_from_network(args.dns_conf_mode.as_deref()),
    )?;
    let ns = Namespaces {
        net: net_mode != net::NetMode::Host,
        ipc,
        join_net: network.as_ref().map(net::PodNetwork::netns_fd),
    };
    // Apps reach host services (the metadata service) at the host's address on their
    // network, as in rkt; sharing the host's network, at 127.0.0.1.
    let host_ip = network
        .as_ref()
        .and_then(net::PodNetwork::host_ip)
        .map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string());
    // Opened now, while nothing of the pod runs yet (docs/stage-contract.md, "The waiter").
    let handoff = match args.interactive {
        true => None,
        false => match Handoff::prepare(&pod_dir) {
            Ok(h) => Some(h),
            Err(e) => {
                if args.debug {
                    eprintln!("stage1: staying as the pod's parent: {e:#}");
                }
                None
            }
        },
    };
    let after_exit = AfterExit {
        uuid: args.uuid.clone(),
        local_config: local_config.display().to_string(),
        debug: args.debug,
        network: network.is_some(),
        cgroups: Default::default(),
    };
    let started = start_pod(
        args,
        &pod_dir,
        &manifest,
        &s1root,
        ns,
        id_range,
        &host_ip,
        handoff.map(|h| (h, after_exit)),
    );
    if let Some(network) = network {
        match &started {
            Err(_) => network.teardown(&net_ctx),
            Ok(_) => network.teardown_after_exit(&net_ctx),
        }
    }
    started
}

/// Plans the apps, creates the pod's PID 1 and supervises it, or hands it over to the waiter
/// if it runs long enough.
#[allow(clippy::too_many_arguments)]
fn start_pod(
    args: &RunArgs,
    pod_dir: &Path,
    manifest: &PodManifest,
    s1root: &Path,
    ns: Namespaces,
    id_range: Option<(u32, u32)>,
    host_ip: &str,
    handoff: Option<(Handoff, AfterExit)>,
) -> Result<i32> {
    let pod = PodSettings {
        hostname: args
            .hostname
            .clone()
            .unwrap_or_else(|| format!("rkt-{}", args.uuid)),
        has_rkt_hosts: s1root.join(RKT_HOSTS).exists(),
        append_hostname: s1root.join(RKT_HOSTS).exists() && args.hosts_mode() != Some("host"),
        has_rkt_resolv: s1root.join(RKT_RESOLV_CONF).exists(),
        metadata_url: args
            .mds_token
            .as_deref()
            .map(|token| metadata_url(pod_dir, host_ip, token))
            .transpose()?,
    };
    let (mut apps, images) = plan_apps(manifest, s1root, &pod, !args.disable_capabilities)?;
    // Dropped when run returns: the pod's cgroups go with it.
    let mut confinement = crate::confine::prepare(pod_dir, args, &mut apps, &images)?;
    if args.interactive && apps.len() != 1 {
        bail!(
            "interactive mode only works with a single app, the pod has {}",
            apps.len()
        );
    }
    let mut runtime = setup::prepare_files(
        s1root,
        &pod,
        &apps,
        args.interactive,
        args.debug,
        STOP_TIMEOUT_SECS,
    )?;
    runtime.append(&mut confinement.seccomp_files);
    let shift = id_range.map_or(0, |(shift, _)| shift);
    setup::create_shared_volumes(pod_dir, &apps, &manifest.volumes, shift)?;
    // Docker images: implicit volumes start with the image's content, as in rkt.
    crate::docker_volumes::copy_up(pod_dir, s1root, manifest, shift)?;
    let stdin = if args.interactive {
        None
    } else {
        Some(setup::dev_null()?)
    };
    let slots = ConsoleSlots::detect(args.interactive);
    let console = slots.wanted().then_some(slots);
    let layout = setup::PodLayout {
        pod_dir,
        s1root,
        hostname: &pod.hostname,
        ns,
        console,
        harden: !args.disable_paths,
        userns: match id_range {
            Some((shift, count)) => {
                let root = std::ffi::CString::new(s1root.as_os_str().as_encoded_bytes())
                    .context("the stage1 root's path holds a NUL byte")?;
                Some(sys::idmapped_tree(&root, shift, count)?)
            }
            None => None,
        },
        userns_root: id_range.map(|(shift, _)| shift),
        runtime,
    };
    let mut ops = setup::pod_ops(&layout, &apps, stdin, args.interactive)?;
    // Right after the parent-death signal: everything PID 1 does is the pod's.
    let init_fds = std::mem::take(&mut confinement.init_fds);
    if !init_fds.is_empty() {
        ops.insert(1, sys::Op::JoinCgroups(init_fds));
    }
    let init_v2 = confinement.init_v2.take();
    if let Some((_, procs)) = &init_v2 {
        let procs = procs
            .try_clone()
            .context("cannot duplicate a cgroup descriptor")?;
        ops.insert(1, sys::Op::JoinCgroupV2(procs));
    }
    let signals = sys::Signals::block()?;
    let child = setup::spawn_pod(&ops, init_v2.as_ref().map(|(dir, _)| dir.as_raw_fd()))?;
    let master = match child.wait_started(&ops, id_range) {
        Ok(master) => master,
        Err(e) => {
            // The child already failed; its status adds nothing to the report.
            let _ = sys::wait(child.pid);
            return Err(e);
        }
    };
    drop(ops);
    let console = match (master, console) {
        (Some(master), Some(slots)) => Some(Console::new(master, slots)?),
        _ => None,
    };
    let pid_file = pod_dir.join(PID_FILE);
    std::fs::write(&pid_file, format!("{}\n", child.pid))
        .with_context(|| format!("cannot write {}", pid_file.display()))?;
    // The waiter does not relay a console: a pod with one keeps stage1.
    let hand_over = handoff
        .filter(|_| console.is_none())
        .map(|(handoff, mut after)| {
            after.cgroups = confinement.after_exit();
            move || handoff.exec(child.pid, &after)
        });
    let code = supervise(child.pid, &signals, console, hand_over)?;
    confinement.report_oom();
    Ok(code)
}

/// The metadata service's port when it is not rkt's 18112 (stage0 writes it, see
/// docs/stage-contract.md, "Metadata service").
const MDS_PORT_FILE: &str = "mds-port";

/// Where apps reach the metadata service: the host, through the pod's network, on the
/// service's port, under the pod's token.
fn metadata_url(pod_dir: &Path, host_ip: &str, token: &str) -> Result<String> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bail!("invalid --mds-token {token:?}");
    }
    let port = match std::fs::read_to_string(pod_dir.join(MDS_PORT_FILE)) {
        Ok(p) => p
            .trim()
            .parse::<u16>()
            .with_context(|| format!("invalid {MDS_PORT_FILE} {p:?}"))?,
        Err(_) => 18112,
    };
    Ok(format!("http://{host_ip}:{port}/{token}"))
}

/// `--private-users=SHIFT:COUNT` (docs/stage-contract.md, "User namespaces").
fn parse_id_range(value: &str) -> Result<(u32, u32)> {
    let parsed = value
        .split_once(':')
        .and_then(|(s, c)| Some((s.parse::<u32>().ok()?, c.parse::<u32>().ok()?)));
    match parsed {
        Some((shift, count)) if shift > 0 && count > 0 && shift.checked_add(count).is_some() => {
            Ok((shift, count))
        }
        _ => bail!("invalid --private-users value {value:?}: expected SHIFT:COUNT, both positive"),
    }
}

fn read_pod_manifest(pod_dir: &Path) -> Result<PodManifest> {
    let path = pod_dir.join(POD_MANIFEST);
    let bytes = std::fs::read(&path)
        .with_context(|| format!("cannot read the pod manifest {}", path.display()))?;
    PodManifest::from_slice(&bytes)
        .with_context(|| format!("invalid pod manifest {}", path.display()))
}

fn plan_apps(
    manifest: &PodManifest,
    s1root: &Path,
    pod: &PodSettings,
    restrict_caps: bool,
) -> Result<(Vec<AppPlan>, Vec<App>)> {
    if manifest.apps.is_empty() {
        bail!("the pod manifest has no apps");
    }
    let mut plans = Vec::new();
    let mut images = Vec::new();
    for ra in &manifest.apps {
        let app_dir = s1root.join(STAGE2_DIR).join(&ra.name);
        let rootfs = app_dir.join("rootfs");
        let app: App = match &ra.app {
            Some(app) => app.clone(),
            None => image_app(&app_dir.join("manifest"), &ra.name)?,
        };
        for warning in crate::isolators::unenforced(&ra.name, &app) {
            eprintln!("stage1: {warning}");
        }
        let mounts = aci::schema::app_mounts(ra, &app, &manifest.volumes)
            .with_context(|| format!("app {}: invalid mounts", ra.name))?;
        let targets: Vec<String> = mounts.iter().map(|m| m.path.clone()).collect();
        let facts = facts::read(&ra.name, &app, &rootfs, &targets, restrict_caps)?;
        for m in mounts.iter().filter(|m| m.implicit) {
            let mount_point = m
                .volume
                .name
                .strip_prefix(&format!("{}-", ra.name))
                .unwrap_or(&m.volume.name);
            eprintln!(
                "stage1: warning: no volume specified for mount point {mount_point:?}, implicitly creating an \"empty\" volume. \
                 This volume will be removed when the pod is garbage-collected."
            );
        }
        let volumes = facts::volumes(&ra.name, mounts)?;
        plans.push(plan::plan_app(
            &ra.name,
            &app,
            ra.read_only_root_fs,
            &facts,
            pod,
            &volumes,
        )?);
        images.push(app);
    }
    Ok((plans, images))
}

/// The app section of the image, for pod manifests that do not carry one.
/// The app section an app runs with: the pod manifest's, else its image's.
fn runtime_app(manifest: &PodManifest, s1root: &Path, name: &str) -> Result<App> {
    let ra = manifest
        .apps
        .iter()
        .find(|a| a.name == name)
        .with_context(|| format!("bug: no app {name} in the pod manifest"))?;
    match &ra.app {
        Some(app) => Ok(app.clone()),
        None => image_app(&s1root.join(STAGE2_DIR).join(name).join("manifest"), name),
    }
}

fn image_app(manifest: &Path, name: &str) -> Result<App> {
    let bytes =
        std::fs::read(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let im = ImageManifest::from_slice(&bytes)
        .with_context(|| format!("invalid image manifest {}", manifest.display()))?;
    im.app.with_context(|| {
        format!("app {name}: neither the pod manifest nor the image has an app section")
    })
}

/// Forwards signals to the pod's PID 1, proxies its console, and returns its exit status.
/// After [`HAND_OVER_AFTER`], calls `hand_over`, which returns only if it failed.
fn supervise(
    pid: i32,
    signals: &sys::Signals,
    mut console: Option<Console>,
    mut hand_over: Option<impl FnOnce() -> anyhow::Error>,
) -> Result<i32> {
    let due = Instant::now() + HAND_OVER_AFTER;
    loop {
        let mut fds = vec![sys::pollfd(signals.as_fd(), libc::POLLIN)];
        if let Some(c) = &console {
            fds.extend(c.poll_fds());
        }
        if hand_over.is_some() && Instant::now() >= due {
            // Signals that arrive from here on stay pending for the waiter's signalfd.
            if let Some(err) = hand_over.take().map(|f| f()) {
                eprintln!("stage1: warning: staying as the pod's parent: {err:#}");
            }
        }
        let timeout = match hand_over {
            Some(_) => due
                .saturating_duration_since(Instant::now())
                .as_millis()
                .try_into()
                .unwrap_or(libc::c_int::MAX),
            None => -1,
        };
        sys::poll(&mut fds, timeout)?;
        if let Some(c) = console.as_mut() {
            c.on_ready(&fds[1..]);
        }
        if fds[0].revents == 0 {
            continue;
        }
        for sig in signals.take() {
            match sig {
                libc::SIGCHLD => {
                    if let Some(exit) = sys::try_wait(pid)? {
                        if let Some(c) = console.as_mut() {
                            c.drain();
                        }
                        return Ok(match exit {
                            sys::Exit::Code(code) => code,
                            sys::Exit::Signal(s) => 128 + s,
                        });
                    }
                }
                // The pod's pty follows the caller's terminal; the kernel tells its apps.
                libc::SIGWINCH if console.is_some() => {
                    console.as_ref().map(Console::resize);
                }
                // The pod may be gone already; its exit arrives as SIGCHLD.
                sig => {
                    let _ = sys::kill(pid, sig);
                }
            }
        }
    }
}
