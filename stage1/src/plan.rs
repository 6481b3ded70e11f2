//! The pure part of stage1: from the pod manifest, the entrypoint arguments and a few facts read
//! from the app images, decide what every app runs and what is mounted where. `setup` carries
//! the plan out; nothing here touches the system, so every rule is unit-tested.
use std::collections::BTreeMap;

use aci::schema::App;
use anyhow::{bail, Result};

use crate::contract::{DEFAULT_ENV, POD_HOSTNAME, POD_HOSTS, STAGE2_DIR};

/// Facts about one app that had to be read from its root filesystem.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppFacts {
    pub uid: u32,
    pub gid: u32,
    /// `exec[0]` resolved to an absolute path inside the app root.
    pub exec_path: String,
    /// Each event handler's `exec[0]`, resolved the same way, keyed by its original value.
    pub handler_paths: BTreeMap<String, String>,
    /// Whether the image brings its own `/etc/hosts`.
    pub has_etc_hosts: bool,
    /// Capabilities the app keeps (`None`: unrestricted).
    pub caps: Option<Vec<u32>>,
}

/// What stage2-init needs to start one app.
#[derive(Debug, Clone, PartialEq)]
pub struct AppLaunch {
    pub name: String,
    /// The app's root inside the stage1 root.
    pub root: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub cwd: String,
    pub env: Vec<(String, String)>,
    pub exec: Vec<String>,
    pub pre_start: Vec<Vec<String>>,
    pub post_stop: Vec<Vec<String>>,
    /// Capabilities the app keeps; `None` leaves them alone (`--insecure-options=capabilities`).
    pub caps: Option<Vec<u32>>,
    pub confine: Confine,
}

/// Confinement stage1 prepares outside the plan's pure part: cgroups, OOM score, seccomp
/// (docs/stage-contract.md, "Cgroups" and "Seccomp").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Confine {
    /// Descriptors on the app's v1 `tasks` files that stage2-init inherits.
    pub cgroup_fds: Vec<i32>,
    /// The app's cgroup2 directory and `cgroup.procs` descriptors.
    pub cgroup_v2: Option<(i32, i32)>,
    pub oom_score_adj: Option<i32>,
    pub no_new_privileges: bool,
    /// The app's seccomp programs, absolute inside the stage1 root.
    pub seccomp: Option<String>,
}

/// Where the source of a mount comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum MountSource {
    /// A fresh procfs for the pod's PID namespace.
    Proc,
    /// The pod-wide `/dev` of the stage1 root (recursive bind).
    PodDev,
    /// The host's `/sys`, read-only.
    Sysfs,
    /// A file or directory of the stage1 root (absolute inside it).
    Stage1Path(String),
    /// A host volume: a file, directory or device node of the host.
    Host {
        path: String,
        recursive: bool,
        /// The source is a device node: it stays usable when everything else is `nodev`.
        device: bool,
    },
    /// An empty volume: `sharedVolumes/<name>` in the pod directory, shared by every app.
    Shared(String),
}

/// One mount inside an app's root. `target` is a path inside the app root; it is resolved
/// there like a chroot would, so symlinks can never lead outside.
#[derive(Debug, Clone, PartialEq)]
pub struct AppMount {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
    /// Whether the target is a file (else a directory) when it has to be created.
    pub file: bool,
    /// Read-only applies to submounts as well (recursive binds).
    pub recursive: bool,
}

/// A volume mount with what had to be learnt from the host about its source.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeMount {
    pub mount: aci::schema::AppMount,
    /// The host source is a file (its target is created as a file).
    pub source_is_file: bool,
    /// The host source is a character or block device (an operator-given device volume).
    pub source_is_device: bool,
}

/// An app with its launch spec and mounts.
#[derive(Debug, Clone, PartialEq)]
pub struct AppPlan {
    pub launch: AppLaunch,
    pub mounts: Vec<AppMount>,
    pub read_only_rootfs: bool,
}

/// Pod-wide settings that come from the arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSettings {
    pub hostname: String,
    /// `/etc/rkt-hosts` exists in the stage1 root (stage0 got `--hosts-entry`).
    pub has_rkt_hosts: bool,
    /// stage0 generated `/etc/rkt-hosts` (mode `stage0`), so the hostname is ours to add; with
    /// `--hosts-entry=host` it is the host's file, bound read-only, and never touched.
    pub append_hostname: bool,
    /// `/etc/rkt-resolv.conf` exists in the stage1 root.
    pub has_rkt_resolv: bool,
    /// `AC_METADATA_URL` for every app, with `--mds-token` only.
    pub metadata_url: Option<String>,
}

/// The app's root inside the stage1 root.
pub fn app_root(name: &str) -> String {
    format!("/{STAGE2_DIR}/{name}/rootfs")
}

/// The environment rkt gives an app: defaults for what the image leaves unset, the app's
/// environment in order, then `AC_APP_NAME` forced (docs/stage-contract.md, "What every app gets").
pub fn compose_env(app_name: &str, app: &App) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = DEFAULT_ENV
        .iter()
        .filter(|(k, _)| !app.environment.iter().any(|e| e.name == *k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for e in &app.environment {
        if e.name != "AC_APP_NAME" {
            env.push((e.name.clone(), e.value.clone()));
        }
    }
    env.push(("AC_APP_NAME".into(), app_name.into()));
    env
}

/// rkt sets `AC_METADATA_URL` only for pods registered with the metadata service, and then
/// over whatever the image says.
fn with_metadata_url(mut env: Vec<(String, String)>, pod: &PodSettings) -> Vec<(String, String)> {
    if let Some(url) = &pod.metadata_url {
        env.retain(|(k, _)| k != "AC_METADATA_URL");
        env.push(("AC_METADATA_URL".into(), url.clone()));
    }
    env
}

/// Builds one app's plan.
pub fn plan_app(
    name: &str,
    app: &App,
    read_only_rootfs: bool,
    facts: &AppFacts,
    pod: &PodSettings,
    volumes: &[VolumeMount],
) -> Result<AppPlan> {
    if app.exec.is_empty() {
        bail!("app {name} has no exec: give one in the image or with --exec");
    }
    let mut exec = app.exec.clone();
    exec[0] = facts.exec_path.clone();
    let handler = |kind: &str| -> Vec<Vec<String>> {
        app.event_handlers
            .iter()
            .filter(|h| h.name == kind && !h.exec.is_empty())
            .map(|h| {
                let mut argv = h.exec.clone();
                if let Some(p) = facts.handler_paths.get(&argv[0]) {
                    argv[0] = p.clone();
                }
                argv
            })
            .collect()
    };
    let cwd = if app.working_directory.is_empty() {
        "/".to_string()
    } else {
        app.working_directory.clone()
    };
    let launch = AppLaunch {
        name: name.to_string(),
        root: app_root(name),
        uid: facts.uid,
        gid: facts.gid,
        groups: supplementary_groups(facts.gid, &app.supplementary_gids),
        cwd,
        env: with_metadata_url(compose_env(name, app), pod),
        exec,
        pre_start: handler("pre-start"),
        post_stop: handler("post-stop"),
        caps: facts.caps.clone(),
        confine: Confine::default(),
    };
    let volumes = volume_mounts(volumes);
    let mut mounts = base_mounts(facts, pod, !volumes.iter().any(|m| under_sys(&m.target)));
    mounts.extend(volumes);
    Ok(AppPlan {
        launch,
        mounts,
        read_only_rootfs,
    })
}

/// The app's supplementary groups: its primary gid first, then the image's
/// `supplementaryGIDs` in order, each once. rkt's apps got the same set (systemd's
/// `Group=` plus `SupplementaryGroups=`), so `id` lists the primary group too.
fn supplementary_groups(gid: u32, extra: &[u32]) -> Vec<u32> {
    let mut groups = vec![gid];
    for g in extra {
        if !groups.contains(g) {
            groups.push(*g);
        }
    }
    groups
}

/// Whether a volume at `target` (absolute and clean) sits on `/sys` or below it. rkt then
/// leaves sysfs out of the app (its prepare-app skips `/sys` when anything is mounted there
/// or under it), so the volume is what the app sees and sysfs cannot hide or break it.
fn under_sys(target: &str) -> bool {
    target == "/sys" || target.starts_with("/sys/")
}

/// The path order of mount targets: component by component, so a parent comes before
/// everything mounted inside it (`/data`, `/data/sub`, `/data2`).
fn path_order(target: &str) -> Vec<&str> {
    target.split('/').filter(|c| !c.is_empty()).collect()
}

/// For each of an app's mounts (in the order they are made), the mount it lies inside: the
/// last earlier mount whose target is a parent directory of its target. Such a target exists
/// only once that mount is made, so it is created then (and before the mount turns
/// read-only); the others are created in the image beforehand.
pub fn mount_parents(mounts: &[AppMount]) -> Vec<Option<usize>> {
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let path = path_order(&m.target);
            mounts[..i].iter().rposition(|earlier| {
                let parent = path_order(&earlier.target);
                parent.len() < path.len() && path.starts_with(&parent)
            })
        })
        .collect()
}

/// Volume mounts in path order (see [`path_order`]), whatever order the pod manifest's mounts,
/// the image's mount points and implicit volumes came in: a volume mounted inside another one
/// must come after it, as rkt's nspawn sorted them. Targets at the same path keep their order.
fn volume_mounts(volumes: &[VolumeMount]) -> Vec<AppMount> {
    let mut out: Vec<AppMount> = volumes
        .iter()
        .map(|v| {
            let vol = &v.mount.volume;
            let (source, recursive) = match vol.kind.as_str() {
                "host" => {
                    let recursive = vol.recursive.unwrap_or(true);
                    (
                        MountSource::Host {
                            path: vol.source.clone().unwrap_or_default(),
                            recursive,
                            device: v.source_is_device,
                        },
                        recursive,
                    )
                }
                _ => (MountSource::Shared(vol.name.clone()), true),
            };
            AppMount {
                source,
                target: v.mount.path.clone(),
                read_only: v.mount.read_only,
                file: v.source_is_file,
                recursive,
            }
        })
        .collect();
    out.sort_by(|a, b| path_order(&a.target).cmp(&path_order(&b.target)));
    out
}

/// The mounts every app gets (appc's required files and devices, docs/stage-contract.md, "What every app gets"); `/sys` only
/// with `sysfs` (no volume of the app is at or below it).
fn base_mounts(facts: &AppFacts, pod: &PodSettings, sysfs: bool) -> Vec<AppMount> {
    let mount = |source, target: &str, read_only, file| AppMount {
        source,
        target: target.to_string(),
        read_only,
        file,
        recursive: true,
    };
    let mut mounts = vec![
        mount(MountSource::Proc, "/proc", false, false),
        mount(MountSource::PodDev, "/dev", false, false),
    ];
    if sysfs {
        mounts.push(mount(MountSource::Sysfs, "/sys", true, false));
    }
    mounts.push(mount(
        MountSource::Stage1Path(format!("/{POD_HOSTNAME}")),
        "/etc/hostname",
        false,
        true,
    ));
    if pod.has_rkt_hosts {
        mounts.push(mount(
            MountSource::Stage1Path("/etc/rkt-hosts".into()),
            "/etc/hosts",
            false,
            true,
        ));
    } else if !facts.has_etc_hosts {
        mounts.push(mount(
            MountSource::Stage1Path(format!("/{POD_HOSTS}")),
            "/etc/hosts",
            false,
            true,
        ));
    }
    if pod.has_rkt_resolv {
        mounts.push(mount(
            MountSource::Stage1Path("/etc/rkt-resolv.conf".into()),
            "/etc/resolv.conf",
            false,
            true,
        ));
    }
    mounts
}

/// rkt's default `/etc/hosts` for apps whose image has none; the stage1 image ships it as
/// `/etc/hosts-fallback`, where stage0 reads it to start the `--hosts-entry` file.
pub const DEFAULT_HOSTS: &str = include_str!("../hosts-fallback");

/// Contents of `/etc/hosts-fallback` for a pod: rkt's default with the pod's hostname.
pub fn hosts_fallback(hostname: &str) -> String {
    add_hosts_entry(DEFAULT_HOSTS, "127.0.0.1", hostname)
}

/// Adds `name` to the first line for `ip` (its first field), or a new `<ip>\t<name>` line at
/// the end when there is none, as rkt's stage1 added the pod's hostname to its hosts files.
/// Every line ends with a newline afterwards.
pub fn add_hosts_entry(hosts: &str, ip: &str, name: &str) -> String {
    let mut out = String::with_capacity(hosts.len() + name.len() + 16);
    let mut found = false;
    for line in hosts.lines() {
        out.push_str(line);
        if !found && line.split_whitespace().next() == Some(ip) {
            found = true;
            out.push(' ');
            out.push_str(name);
        }
        out.push('\n');
    }
    if !found {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// Serialises the plan for stage2-init (format documented in stage2-init/src/plan.rs).
pub fn init_plan(
    apps: &[AppLaunch],
    interactive: bool,
    verbose: bool,
    stop_timeout: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |s: &str| {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    };
    field(crate::contract::PLAN_MAGIC);
    field("stop-timeout");
    field(&stop_timeout.to_string());
    field("interactive");
    field(if interactive { "1" } else { "0" });
    field("verbose");
    field(if verbose { "1" } else { "0" });
    for app in apps {
        field("app");
        field(&app.name);
        field("root");
        field(&app.root);
        field("uid");
        field(&app.uid.to_string());
        field("gid");
        field(&app.gid.to_string());
        field("groups");
        field(&app.groups.len().to_string());
        for g in &app.groups {
            field(&g.to_string());
        }
        field("cwd");
        field(&app.cwd);
        field("env");
        field(&app.env.len().to_string());
        for (k, v) in &app.env {
            field(&format!("{k}={v}"));
        }
        field("exec");
        field(&app.exec.len().to_string());
        for a in &app.exec {
            field(a);
        }
        if let Some(caps) = &app.caps {
            field("caps");
            field(&caps.len().to_string());
            for c in caps {
                field(&c.to_string());
            }
        }
        let confine = &app.confine;
        if !confine.cgroup_fds.is_empty() {
            field("cgroup-fds");
            field(&confine.cgroup_fds.len().to_string());
            for fd in &confine.cgroup_fds {
                field(&fd.to_string());
            }
        }
        if let Some((dir, procs)) = confine.cgroup_v2 {
            field("cgroup-v2");
            field(&dir.to_string());
            field(&procs.to_string());
        }
        if let Some(adj) = confine.oom_score_adj {
            field("oom-score-adj");
            field(&adj.to_string());
        }
        if confine.no_new_privileges {
            field("no-new-privileges");
            field("1");
        }
        if let Some(path) = &confine.seccomp {
            field("seccomp");
            field(path);
        }
        for (key, handlers) in [("pre-start", &app.pre_start), ("post-stop", &app.post_stop)] {
            for argv in handlers {
                field(key);
                field(&argv.len().to_string());
                for a in argv {
                    field(a);
                }
            }
        }
    }
    out
}

/// The content of `rkt/env/<app>`: `KEY=VALUE` entries, each ended by a NUL byte (as in
/// `/proc/<pid>/environ`), so a value may hold any byte but NUL, newlines included, and is
/// read back exactly (docs/stage-contract.md).
pub fn env_file(env: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in env {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests;
