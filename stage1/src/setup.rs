//! Carries out a pod plan: writes stage1's files (before the fork, in stage0's mount namespace)
//! and turns the mounts into the op list the pod's PID 1 executes.
use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::console::ConsoleSlots;
use crate::contract::{
    ENV_DIR, INIT_PLAN, POD_HOSTNAME, POD_HOSTS, RKT_HOSTS, RUNTIME_DIR, SECCOMP_DIR,
    SHARED_VOLUMES, STAGE2_INIT, STATUS_DIR,
};
use crate::plan::{self, AppPlan, MountSource, PodSettings};
use crate::sys::{self, cpath, cstring, ConsoleOp, MakeTarget, Op, PreparedExec, Target};
use crate::sys::{CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS, MS_NOEXEC};
use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_RDONLY};
use crate::sys::{MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REC, MS_SLAVE, MS_STRICTATIME};

/// Devices bound from the host into the pod's `/dev` (appc's required set).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// How the pod's namespaces are made.
pub struct Namespaces {
    /// A network namespace of the pod's own (else the host's).
    pub net: bool,
    pub ipc: bool,
    /// The pod's network namespace made by stage1 for CNI, to join instead of making one
    /// (docs/stage-contract.md, "Networking"); open until the pod runs.
    pub join_net: Option<std::os::fd::RawFd>,
}

/// Where the pod is and how it is isolated.
pub struct PodLayout<'a> {
    pub pod_dir: &'a Path,
    pub s1root: &'a Path,
    pub hostname: &'a str,
    pub ns: Namespaces,
    /// The caller's terminals a pod pty replaces; `None`: no terminal, `/dev/console` is
    /// `/dev/null`.
    pub console: Option<ConsoleSlots>,
    /// Read-only and masked kernel interfaces and `nodev` mounts (off with
    /// `--insecure-options=paths`).
    pub harden: bool,
    /// The pod runs in its own user namespace (`--private-users`): the stage1 root's
    /// id-mapped mount tree (see `sys::idmapped_tree`).
    pub userns: Option<OwnedFd>,
    /// The host uid (and gid) that is root in that user namespace.
    pub userns_root: Option<u32>,
    /// What PID 1 writes into its runtime directory.
    pub runtime: Vec<RuntimeFile>,
}

/// A file of the pod's runtime directory (docs/stage-contract.md, "Runtime files"), written
/// by the pod's PID 1 into its tmpfs before it runs stage2-init.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeFile {
    /// Relative to the stage1 root, below [`RUNTIME_DIR`].
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Prepares the stage1 root's directories and `etc/rkt-hosts` (stage0's file, which gets the
/// hostname), and returns the runtime files: hostname, hosts, env files and the stage2-init
/// plan. The seccomp programs come from [`crate::confine`].
pub fn prepare_files(
    s1root: &Path,
    pod: &PodSettings,
    apps: &[AppPlan],
    interactive: bool,
    verbose: bool,
    stop_timeout: u32,
) -> Result<Vec<RuntimeFile>> {
    // They exist in our stage1 image; creating them in the overlay costs a copy-up each.
    for dir in ["proc", "dev", "sys", "etc", "tmp", STATUS_DIR, RUNTIME_DIR] {
        let path = s1root.join(dir);
        if !path.is_dir() {
            fs::create_dir_all(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
        }
    }
    if pod.append_hostname {
        // stage0 wrote the fallback entries and --hosts-entry; the hostname is ours to add, on
        // the first 127.0.0.1 line as in the fallback.
        let path = s1root.join(RKT_HOSTS);
        let content =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let content = plan::add_hosts_entry(&content, "127.0.0.1", &pod.hostname);
        write(&path, content.as_bytes(), 0o644)?;
    }
    let file = |path: String, data: Vec<u8>, mode: u32| RuntimeFile { path, data, mode };
    let mut files = vec![
        file(
            POD_HOSTNAME.into(),
            format!("{}\n", pod.hostname).into_bytes(),
            0o644,
        ),
        file(
            POD_HOSTS.into(),
            plan::hosts_fallback(&pod.hostname).into_bytes(),
            0o644,
        ),
    ];
    // The environments and the plan hold every app's secrets: root only.
    for app in apps {
        files.push(file(
            format!("{ENV_DIR}/{}", app.launch.name),
            plan::env_file(&app.launch.env),
            0o600,
        ));
    }
    let launches: Vec<_> = apps.iter().map(|a| a.launch.clone()).collect();
    files.push(file(
        INIT_PLAN.into(),
        plan::init_plan(&launches, interactive, verbose, stop_timeout),
        0o600,
    ));
    Ok(files)
}

/// Replaces `path` with `data`, never following a symlink there, with `mode`.
fn write(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its mode on open: set it.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(data))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Resolves `target` inside the app root and creates it (directory or empty file) if missing.
fn prepare_target(app_root: &Path, target: &str, file: bool) -> Result<PathBuf> {
    let host = aci::rootfs::resolve_in_root(app_root, target).with_context(|| {
        format!(
            "cannot resolve mount target {target} in {}",
            app_root.display()
        )
    })?;
    if host.symlink_metadata().is_err() {
        if let Some(parent) = host.parent() {
            // Parents were resolved inside the root, so creating them cannot escape it.
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        if file {
            fs::File::create(&host).with_context(|| format!("cannot create {}", host.display()))?;
        } else {
            fs::create_dir(&host).with_context(|| format!("cannot create {}", host.display()))?;
        }
    }
    Ok(host)
}

fn path(p: &Path) -> Result<Target> {
    Ok(Target::Path(cpath(p)?))
}

/// A path inside a root (an app's, or stage1's), resolved by the kernel at mount time (see
/// [`Target::InRoot`]).
fn in_root(root: &Path, target: &str) -> Result<Target> {
    Ok(Target::InRoot {
        root: cpath(root)?,
        path: cstring(target)?,
    })
}

fn mount(
    source: Option<&str>,
    target: Target,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<Op> {
    Ok(Op::Mount {
        source: source.map(cstring).transpose()?,
        target,
        fstype: fstype.map(cstring).transpose()?,
        flags,
        data: data.map(cstring).transpose()?,
        optional: false,
    })
}

fn bind(source: Target, target: Target, recursive: bool) -> Op {
    Op::Bind {
        source,
        target,
        recursive,
        optional: false,
    }
}

fn set_attr(target: Target, attrs: u64, recursive: bool) -> Op {
    Op::SetAttr {
        target,
        set: attrs,
        clear: 0,
        recursive,
        optional: false,
    }
}

/// Lets device nodes on `target` work again after the recursive `nodev` (one node's bind).
fn allow_devices(target: Target) -> Op {
    Op::SetAttr {
        target,
        set: 0,
        clear: MOUNT_ATTR_NODEV,
        recursive: false,
        optional: false,
    }
}

/// Kernel interfaces an app may read but not change (docs/stage-contract.md, "Devices"), unless
/// `--insecure-options=paths`.
const READ_ONLY_PROC: [&str; 5] = [
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/bus",
    "/proc/irq",
    "/proc/fs",
];
/// Kernel interfaces hidden from apps (bound over with /dev/null).
const MASKED_PROC: [&str; 7] = [
    "/proc/kcore",
    "/proc/kallsyms",
    "/proc/sched_debug",
    "/proc/timer_list",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/config.gz",
];

/// Read-only and masked parts of /proc in an app, after its /proc is mounted. Sources are
/// resolved inside the app's root like the targets: an image whose /proc is a symlink must
/// not get host directories bound in.
fn hardening_ops(root: &Path) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    for p in READ_ONLY_PROC {
        ops.push(Op::Bind {
            source: in_root(root, p)?,
            target: in_root(root, p)?,
            recursive: false,
            optional: true,
        });
        ops.push(Op::SetAttr {
            target: in_root(root, p)?,
            set: MOUNT_ATTR_RDONLY,
            clear: 0,
            recursive: true,
            optional: true,
        });
    }
    for p in MASKED_PROC {
        ops.push(Op::Bind {
            source: path(Path::new("/dev/null"))?,
            target: in_root(root, p)?,
            recursive: false,
            optional: true,
        });
    }
    Ok(ops)
}

/// Parts of sysfs hidden from apps (docs/stage-contract.md, "Devices"): firmware tables, file
/// system and module internals, hypervisor and power controls.
const MASKED_SYS: [&str; 5] = ["firmware", "fs", "hypervisor", "module", "power"];

/// Covers each [`MASKED_SYS`] directory of the app's sysfs at `sys` with an empty read-only
/// tmpfs.
fn sys_hardening_ops(root: &Path, sys: &str) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    for dir in MASKED_SYS {
        ops.push(Op::Mount {
            source: Some(cstring("tmpfs")?),
            target: in_root(root, &format!("{}/{dir}", sys.trim_end_matches('/')))?,
            fstype: Some(cstring("tmpfs")?),
            flags: MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            data: Some(cstring("size=0,mode=0555")?),
            optional: true,
        });
    }
    Ok(ops)
}

/// The runtime directory (docs/stage-contract.md, "Runtime files"): a tmpfs, root's only,
/// with the files written into it. In a user namespace, root there owns them.
fn runtime_ops(s1root: &Path, files: &[RuntimeFile], owner: Option<u32>) -> Result<Vec<Op>> {
    let dir = s1root.join(RUNTIME_DIR);
    let data = match owner {
        Some(id) => format!("mode=0700,uid={id},gid={id}"),
        None => "mode=0700".into(),
    };
    let mut ops = vec![mount(
        Some("tmpfs"),
        path(&dir)?,
        Some("tmpfs"),
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        Some(&data),
    )?];
    for sub in [ENV_DIR, SECCOMP_DIR] {
        ops.push(Op::Mkdir(cpath(&s1root.join(sub))?, 0o700));
        if let Some(id) = owner {
            ops.push(Op::Chown(cpath(&s1root.join(sub))?, id));
        }
    }
    for f in files {
        ops.push(Op::WriteFile {
            path: cpath(&s1root.join(&f.path))?,
            data: f.data.clone(),
            mode: f.mode,
            owner,
        });
    }
    Ok(ops)
}

/// The pod-wide `/dev`: a tmpfs with the host's basic devices bound in, its own devpts and shm.
/// `/dev/console` is created here and bound by [`console_ops`].
fn dev_ops(s1root: &Path) -> Result<Vec<Op>> {
    let dev = s1root.join("dev");
    // nodev: nothing created in the pod's /dev works as a device; the binds below keep their
    // own mount flags.
    let mut ops = vec![mount(
        Some("tmpfs"),
        path(&dev)?,
        Some("tmpfs"),
        MS_NOSUID | MS_NODEV | MS_STRICTATIME,
        Some("mode=755"),
    )?];
    for name in DEVICES {
        let node = dev.join(name);
        ops.push(Op::Touch(cpath(&node)?));
        ops.push(bind(
            path(&Path::new("/dev").join(name))?,
            path(&node)?,
            false,
        ));
    }
    ops.push(Op::Touch(cpath(&dev.join("console"))?));
    ops.push(Op::Mkdir(cpath(&dev.join("pts"))?, 0o755));
    ops.push(mount(
        Some("devpts"),
        path(&dev.join("pts"))?,
        Some("devpts"),
        MS_NOSUID | MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620,gid=5"),
    )?);
    ops.push(Op::Symlink {
        target: cstring("pts/ptmx")?,
        link: cpath(&dev.join("ptmx"))?,
    });
    ops.push(Op::Mkdir(cpath(&dev.join("shm"))?, 0o1777));
    ops.push(mount(
        Some("tmpfs"),
        path(&dev.join("shm"))?,
        Some("tmpfs"),
        MS_NOSUID | MS_NODEV,
        Some("mode=1777"),
    )?);
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Symlink {
            target: cstring(target)?,
            link: cpath(&dev.join(link))?,
        });
    }
    Ok(ops)
}

/// `/dev/console`: the slave of a new pty of the pod's devpts when the caller has a terminal
/// (its master goes to stage1, see `console.rs`), else `/dev/null`.
fn console_ops(
    s1root: &Path,
    console: Option<&ConsoleSlots>,
    interactive: bool,
) -> Result<Vec<Op>> {
    let dev = s1root.join("dev");
    let Some(slots) = console else {
        return Ok(vec![bind(
            path(Path::new("/dev/null"))?,
            path(&dev.join("console"))?,
            false,
        )]);
    };
    let (rows, cols) = slots.size();
    Ok(vec![Op::Console(ConsoleOp {
        ptmx: cpath(&dev.join("pts/ptmx"))?,
        console: cpath(&dev.join("console"))?,
        stdio: slots.stdio,
        controlling_tty: interactive && slots.stdio[0],
        rows,
        cols,
    })])
}

/// Where empty volumes live: `<pod>/sharedVolumes/<name>`, removed with the pod.
pub fn shared_volume_dir(pod_dir: &Path, name: &str) -> PathBuf {
    pod_dir.join(SHARED_VOLUMES).join(name)
}

/// Creates every empty volume the apps mount, once, with its mode and owner.
/// `shift`: the pod's user namespace maps its ids to the host's plus this (0 without one).
pub fn create_shared_volumes(
    pod_dir: &Path,
    apps: &[AppPlan],
    volumes: &[aci::schema::Volume],
    shift: u32,
) -> Result<()> {
    for app in apps {
        for m in &app.mounts {
            let MountSource::Shared(name) = &m.source else {
                continue;
            };
            let dir = shared_volume_dir(pod_dir, name);
            if dir.exists() {
                continue;
            }
            let vol = volumes.iter().find(|v| &v.name == name);
            let mut vol = vol.cloned().unwrap_or_else(|| aci::schema::Volume {
                name: name.clone(),
                kind: "empty".into(),
                ..Default::default()
            });
            vol.fill_defaults();
            fs::create_dir_all(&dir).with_context(|| {
                format!("cannot create empty volume {name} at {}", dir.display())
            })?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o770))
                .with_context(|| format!("cannot chmod {}", dir.display()))?;
            // In a user namespace the pod's ids are the host's plus the shift.
            let owner = |id: Option<u32>| match shift {
                0 => id,
                _ => Some(id.unwrap_or(0).saturating_add(shift)),
            };
            std::os::unix::fs::chown(&dir, owner(vol.uid), owner(vol.gid))
                .with_context(|| format!("could not change owner of empty volume {name}"))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(vol.mode_bits()))
                .with_context(|| format!("could not change permissions of empty volume {name}"))?;
        }
    }
    Ok(())
}

/// The app's root inside the stage1 root, as a host path.
fn app_root(s1root: &Path, app: &AppPlan) -> PathBuf {
    s1root.join(app.launch.root.trim_start_matches('/'))
}

/// Mount ops for one app. Missing targets are created now, before the fork; the ops resolve
/// them again inside the app root when they run.
fn app_ops(layout: &PodLayout<'_>, app: &AppPlan) -> Result<Vec<Op>> {
    let (s1root, pod_dir, harden) = (layout.s1root, layout.pod_dir, layout.harden);
    let root = app_root(s1root, app);
    // A self-bind makes the app root a mount of its own, so its attributes can be set.
    let mut ops = vec![bind(path(&root)?, path(&root)?, true)];
    let tmp = aci::rootfs::resolve_in_root(&root, "/tmp")?;
    if tmp.symlink_metadata().is_err() {
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))
            .with_context(|| format!("cannot chmod {}", tmp.display()))?;
    }
    let parents = plan::mount_parents(&app.mounts);
    for (i, m) in app.mounts.iter().enumerate() {
        if parents[i].is_none() {
            prepare_target(&root, &m.target, m.file)
                .with_context(|| format!("app {}", app.launch.name))?;
        }
        let target = || in_root(&root, &m.target);
        match &m.source {
            MountSource::Proc => {
                ops.push(mount(
                    Some("proc"),
                    target()?,
                    Some("proc"),
                    MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    None,
                )?);
                if harden {
                    ops.extend(hardening_ops(&root)?);
                }
            }
            MountSource::PodDev => ops.push(bind(path(&s1root.join("dev"))?, target()?, true)),
            // In its own network namespace the pod gets a sysfs showing its own interfaces;
            // sharing the host's network, it sees the host's.
            MountSource::Sysfs if layout.ns.net => ops.push(mount(
                Some("sysfs"),
                target()?,
                Some("sysfs"),
                MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                None,
            )?),
            MountSource::Sysfs => ops.push(bind(path(Path::new("/sys"))?, target()?, true)),
            MountSource::Stage1Path(p) => ops.push(bind(in_root(s1root, p)?, target()?, false)),
            MountSource::Host {
                path: source,
                recursive,
                ..
            } => ops.push(bind(path(Path::new(source))?, target()?, *recursive)),
            MountSource::Shared(name) => ops.push(bind(
                path(&shared_volume_dir(pod_dir, name))?,
                target()?,
                true,
            )),
        }
        if harden && matches!(m.source, MountSource::Sysfs) {
            ops.extend(sys_hardening_ops(&root, &m.target)?);
        }
        // Targets of later mounts inside this one exist only now: made before it may turn
        // read-only. (rkt made them in the same place, inside the volume.)
        for (later, parent) in app.mounts.iter().zip(&parents).skip(i + 1) {
            if *parent == Some(i) {
                ops.push(Op::MakeTarget(MakeTarget::new(
                    &root,
                    &later.target,
                    later.file,
                )?));
            }
        }
        if m.read_only {
            ops.push(set_attr(target()?, MOUNT_ATTR_RDONLY, m.recursive));
        }
    }
    // Only the app root itself: volumes mounted in it keep their own mode.
    if app.read_only_rootfs {
        ops.push(set_attr(path(&root)?, MOUNT_ATTR_RDONLY, false));
    }
    Ok(ops)
}

/// `nodev` on every mount of the pod (the stage1 root, every app root, volumes, /dev's
/// tmpfs), then device nodes allowed again only on the binds of single devices stage1 made:
/// the pod's basic devices, its console, its devpts and device volumes the operator gave.
/// A node made with CAP_MKNOD, anywhere, then never works.
fn nodev_ops(layout: &PodLayout<'_>, apps: &[AppPlan]) -> Result<Vec<Op>> {
    let dev = layout.s1root.join("dev");
    let mut ops = vec![set_attr(path(layout.s1root)?, MOUNT_ATTR_NODEV, true)];
    let nodes: Vec<String> = DEVICES
        .iter()
        .chain(&["console", "pts"])
        .map(|n| n.to_string())
        .collect();
    for node in &nodes {
        ops.push(allow_devices(path(&dev.join(node))?));
    }
    for app in apps {
        let root = app_root(layout.s1root, app);
        for m in &app.mounts {
            match &m.source {
                MountSource::PodDev => {
                    for node in &nodes {
                        let target = format!("{}/{node}", m.target.trim_end_matches('/'));
                        ops.push(allow_devices(in_root(&root, &target)?));
                    }
                }
                MountSource::Host { device: true, .. } => {
                    ops.push(allow_devices(in_root(&root, &m.target)?))
                }
                _ => {}
            }
        }
    }
    Ok(ops)
}

/// The complete op list for the pod's PID 1.
pub fn pod_ops(
    layout: &PodLayout<'_>,
    apps: &[AppPlan],
    stdin: Option<OwnedFd>,
    interactive: bool,
) -> Result<Vec<Op>> {
    let PodLayout {
        s1root,
        hostname,
        ns,
        console,
        ..
    } = layout;
    let s1root = *s1root;
    // A session of its own: the caller's terminal is never the pod's controlling terminal.
    let mut ops = vec![Op::DieWithParent, Op::Setsid];
    if let Some(fd) = stdin {
        ops.push(Op::Stdin(fd));
    }
    let mut flags = CLONE_NEWNS | CLONE_NEWUTS;
    if ns.ipc {
        flags |= CLONE_NEWIPC;
    }
    if ns.net && ns.join_net.is_none() {
        flags |= CLONE_NEWNET;
    }
    ops.push(Op::Unshare(flags));
    if let Some(fd) = ns.join_net {
        ops.push(Op::JoinNetns(fd));
    }
    // Nothing mounted in the pod may propagate back to the host.
    ops.push(mount(
        None,
        path(Path::new("/"))?,
        None,
        MS_REC | MS_SLAVE,
        None,
    )?);
    if let Some(tree) = &layout.userns {
        let tree = tree
            .try_clone()
            .context("cannot duplicate the id-mapped root's descriptor")?;
        ops.push(Op::AttachIdmappedRoot {
            tree,
            target: cpath(s1root)?,
        });
    } else {
        ops.push(bind(path(s1root)?, path(s1root)?, true));
    }
    ops.push(mount(
        Some("proc"),
        path(&s1root.join("proc"))?,
        Some("proc"),
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        None,
    )?);
    ops.extend(runtime_ops(s1root, &layout.runtime, layout.userns_root)?);
    ops.extend(dev_ops(s1root)?);
    // Before the apps' /dev binds, so they carry the console too.
    ops.extend(console_ops(s1root, console.as_ref(), interactive)?);
    for app in apps {
        ops.extend(app_ops(layout, app)?);
    }
    // After every mount: the recursive nodev must see them all.
    if layout.harden {
        ops.extend(nodev_ops(layout, apps)?);
    }
    ops.push(Op::SetHostname(cstring(hostname)?));
    if ns.net {
        ops.push(Op::LoopbackUp);
    }
    ops.push(Op::PivotRoot(cpath(s1root)?));
    // Before the bounding set is narrowed: a new user namespace starts with a full one.
    if layout.userns.is_some() {
        ops.push(Op::EnterUserns);
    }
    let app_caps: Vec<Option<Vec<u32>>> = apps.iter().map(|a| a.launch.caps.clone()).collect();
    if let Some(keep) = crate::caps::init_bounding_set(&app_caps) {
        ops.push(Op::LimitBounding {
            keep,
            last: crate::caps::last_cap(),
        });
    }
    ops.push(Op::UnblockSignals);
    let plan_path = format!("/{INIT_PLAN}");
    ops.push(Op::Exec(PreparedExec::new(
        STAGE2_INIT,
        &[STAGE2_INIT.to_string(), plan_path],
        &[(
            "PATH".to_string(),
            crate::contract::DEFAULT_PATH.to_string(),
        )],
    )?));
    Ok(ops)
}

/// `/dev/null`, opened for the apps' stdin when the pod is not interactive.
pub fn dev_null() -> Result<OwnedFd> {
    let f = fs::File::open("/dev/null").context("cannot open /dev/null")?;
    Ok(OwnedFd::from(f))
}

pub use sys::spawn_pod;

#[cfg(test)]
mod tests;
