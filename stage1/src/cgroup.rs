//! The pod's cgroups on cgroup v1, cgroup v2 and hybrid hosts (docs/stage-contract.md,
//! "Cgroups"). The pod gets `machine-rkt\x2d<uuid>.scope` under stage1's own cgroup in every
//! mounted hierarchy (so a scheduler that accounts and kills by the caller's cgroup still sees
//! the pod), its PID 1 `init.scope` in it and each app `system.slice/<app>.service`, as rkt's
//! systemd stage1 laid them out. Limits go on the app cgroups: memory and CPU where the host
//! has the controller, on v1 if it is mounted there, else on v2; a missing controller is a
//! warning naming it, as rkt skipped such isolators. Hierarchies that would enforce nothing
//! for this pod are left alone; the pod's processes stay in stage1's cgroup there.
//!
//! Everything here works on paths given by the caller, so the unit tests run on fake roots.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The name of the pod's cgroup, as rkt's stage1 named the machine scope.
pub fn pod_cgroup_name(uuid: &str) -> String {
    format!("machine-rkt\\x2d{uuid}.scope")
}

pub const INIT_CGROUP: &str = "init.scope";
pub const APPS_SLICE: &str = "system.slice";

pub fn app_cgroup(app: &str) -> String {
    format!("{APPS_SLICE}/{app}.service")
}

/// One mounted cgroup hierarchy and stage1's place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount: PathBuf,
    /// v1 controllers (`memory`, `cpu`, `cpuacct`, `name=systemd`, ...); empty for v2.
    pub controllers: Vec<String>,
    pub v2: bool,
    /// stage1's own cgroup directory in it.
    pub own: PathBuf,
}

/// The host's cgroup layout as stage1 sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub hierarchies: Vec<Hierarchy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    V1,
    V2,
    /// v1 controllers plus a cgroup2 mount (systemd's "hybrid").
    Hybrid,
    None,
}

/// Undoes the octal escapes of /proc/self/mountinfo (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(v) = octal.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A cgroup mount from mountinfo: (root inside the hierarchy, mount point, v2, controllers).
fn cgroup_mounts(mountinfo: &str) -> Vec<(String, PathBuf, bool, Vec<String>)> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let (root, point) = (unescape(left[3]), PathBuf::from(unescape(left[4])));
        match right[0] {
            "cgroup2" => out.push((root, point, true, Vec::new())),
            "cgroup" => {
                let controllers = right[2]
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains("release_agent"))
                    .filter(|o| !o.starts_with("clone_children") && *o != "noprefix")
                    .filter(|o| !o.starts_with("xattr"))
                    .map(str::to_string)
                    .collect();
                out.push((root, point, false, controllers));
            }
            _ => {}
        }
    }
    out
}

impl Layout {
    /// The layout of this process: its /proc/self/cgroup matched with the cgroup mounts.
    pub fn detect() -> Result<Layout> {
        let own =
            fs::read_to_string("/proc/self/cgroup").context("cannot read /proc/self/cgroup")?;
        let mounts = fs::read_to_string("/proc/self/mountinfo")
            .context("cannot read /proc/self/mountinfo")?;
        Ok(Layout::parse(&own, &mounts))
    }

    /// Pure: from the texts of /proc/self/cgroup and /proc/self/mountinfo.
    pub fn parse(proc_cgroup: &str, mountinfo: &str) -> Layout {
        let mounts = cgroup_mounts(mountinfo);
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for line in proc_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let v2 = ctrl.is_empty();
            let wanted: Vec<&str> = ctrl.split(',').filter(|c| !c.is_empty()).collect();
            // The first mount of that hierarchy whose root contains our cgroup.
            let found = mounts.iter().find(|(root, _, is_v2, ctrls)| {
                *is_v2 == v2
                    && (v2
                        || (ctrls.len() == wanted.len()
                            && wanted.iter().all(|w| ctrls.iter().any(|c| c == w))))
                    && (root == "/" || path == root || path.starts_with(&format!("{root}/")))
            });
            let Some((root, point, _, ctrls)) = found else {
                continue;
            };
            if hierarchies.iter().any(|h| &h.mount == point) {
                continue;
            }
            let rel = if root == "/" {
                path
            } else {
                &path[root.len()..]
            };
            let own = point.join(rel.trim_start_matches('/'));
            hierarchies.push(Hierarchy {
                mount: point.clone(),
                controllers: ctrls.clone(),
                v2,
                own,
            });
        }
        Layout { hierarchies }
    }

    pub fn kind(&self) -> Kind {
        let v1 = self.hierarchies.iter().any(|h| !h.v2);
        let v2 = self.hierarchies.iter().any(|h| h.v2);
        match (v1, v2) {
            (true, true) => Kind::Hybrid,
            (true, false) => Kind::V1,
            (false, true) => Kind::V2,
            (false, false) => Kind::None,
        }
    }

    fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| !h.v2 && h.controllers.iter().any(|c| c == controller))
    }

    fn v2(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.v2)
    }

    /// The hierarchy that serves `controller`: v1 when mounted there, else v2 when the
    /// controller is available to stage1's cgroup.
    fn serving(&self, controller: &str) -> Option<(&Hierarchy, bool)> {
        if let Some(h) = self.v1(controller) {
            return Some((h, false));
        }
        let h = self.v2()?;
        let available = fs::read_to_string(h.own.join("cgroup.controllers")).ok()?;
        available
            .split_whitespace()
            .any(|c| c == controller)
            .then_some((h, true))
    }
}

/// What one app's cgroup enforces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppLimits {
    pub name: String,
    pub memory_bytes: Option<i64>,
    pub cpu_milli: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// Device rules (`c 10:200 rw`) beyond [`BASE_DEVICES`], for the app's device volumes;
    /// `None` leaves devices open (`--insecure-options=paths`).
    pub devices: Option<Vec<String>>,
}

/// The devices every app may use (appc's required set, plus the pod's ptys and console):
/// read, write and mknod for the memory devices, read and write only for the terminals, so
/// `mknod c 5:2` (the old ptmx) is refused while `/dev/pts/ptmx` works.
pub const BASE_DEVICES: &[&str] = &[
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rw",
    "c 5:1 rw",
    "c 5:2 rw",
    "c 136:* rw",
];

/// CFS period for CPU limits (rkt's 100 ms).
const CPU_PERIOD_US: i64 = 100_000;

/// cgroup v2's `cpu.weight` (1..10000) for v1's `cpu.shares` (2..262144), as runc and crun
/// convert it.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The file a process writes "0" to, to join a v1 cgroup: `tasks`, which moves the calling
/// thread only, so the kernel skips the global lock that `cgroup.procs` (a whole thread group)
/// takes, and the RCU grace period (about 10 ms) it waits for. The processes that join are
/// single-threaded (PID 1 and each app process, between `fork` and `exec`), so a thread is all
/// of them.
pub const V1_JOIN_FILE: &str = "tasks";

/// The cgroups made for one pod.
#[derive(Debug, Default)]
pub struct PodCgroups {
    /// The pod's directory in each hierarchy.
    pub pod_dirs: Vec<PathBuf>,
    /// [`V1_JOIN_FILE`] of PID 1's cgroup in each v1 hierarchy it joins (none with cgroup2,
    /// whose cgroup is `v2_init`).
    pub init_procs: Vec<PathBuf>,
    /// Per app (in the order given): [`V1_JOIN_FILE`] of its cgroup in each v1 hierarchy it
    /// joins; its cgroup2 cgroup is in `v2_apps`.
    pub app_procs: Vec<Vec<PathBuf>>,
    /// Per app: its cgroup dir in the hierarchy that counts memory (for OOM reports).
    pub app_memory: Vec<Option<(PathBuf, bool)>>,
    /// The cgroup2 directories of PID 1 and of each app, where eBPF device programs go.
    pub v2_init: Option<PathBuf>,
    pub v2_apps: Vec<PathBuf>,
    /// Whether the v1 `devices` controller carries the device policy.
    pub devices_v1: bool,
}

fn write_file(path: &Path, value: &str) -> Result<()> {
    // Append and create only matter on the fake roots of the unit tests: cgroupfs files
    // exist already and take one value per write.
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(value.as_bytes())
        .with_context(|| format!("cannot write {value:?} to {}", path.display()))
}

fn mkdir(path: &Path) -> Result<()> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create cgroup {}", path.display())),
    }
}

/// v1 cpuset cgroups start with no CPUs and no memory nodes, and refuse tasks until given
/// some: copy the parent's.
fn inherit_cpuset(h: &Hierarchy, dir: &Path) -> Result<()> {
    if h.v2 || !h.controllers.iter().any(|c| c == "cpuset") {
        return Ok(());
    }
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let current = fs::read_to_string(&own).unwrap_or_default();
        if current.trim().is_empty() {
            let parent = dir.parent().map(|p| p.join(file));
            if let Some(value) = parent.and_then(|p| fs::read_to_string(p).ok()) {
                write_file(&own, value.trim())?;
            }
        }
    }
    Ok(())
}

/// Turns `controllers` on for the children of `dir` (cgroup v2).
fn enable_v2(dir: &Path, controllers: &[&str]) -> Result<()> {
    if controllers.is_empty() {
        return Ok(());
    }
    let value: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    write_file(&dir.join("cgroup.subtree_control"), &value.join(" "))
}

/// Creates the pod's cgroups and sets the apps' limits. Warnings name what could not be
/// enforced and why.
pub fn create(
    layout: &Layout,
    uuid: &str,
    apps: &[AppLimits],
) -> Result<(PodCgroups, Vec<String>)> {
    let mut warnings = Vec::new();
    let pod_name = pod_cgroup_name(uuid);
    let mut out = PodCgroups {
        app_procs: vec![Vec::new(); apps.len()],
        app_memory: vec![None; apps.len()],
        ..PodCgroups::default()
    };
    let needs = |what: fn(&AppLimits) -> bool| apps.iter().any(what);
    let want_memory = needs(|a| a.memory_bytes.is_some());
    let want_cpu = needs(|a| a.cpu_milli.is_some() || a.cpu_shares.is_some());
    // Which hierarchy enforces what; v2 controllers must be switched on top-down.
    let memory = layout.serving("memory");
    let cpu = layout.serving("cpu");
    if want_memory && memory.is_none() {
        warnings.push("the host has no memory cgroup controller available to rkt: memory limits are not enforced".to_string());
    }
    if want_cpu && cpu.is_none() {
        warnings.push(
            "the host has no cpu cgroup controller available to rkt: CPU limits and shares are not enforced"
                .to_string(),
        );
    }
    let mut v2_controllers: Vec<&str> = Vec::new();
    if want_memory && matches!(memory, Some((_, true))) {
        v2_controllers.push("memory");
    }
    if want_cpu && matches!(cpu, Some((_, true))) {
        v2_controllers.push("cpu");
    }
    let want_devices = apps.iter().all(|a| a.devices.is_some());
    let has_v2 = layout.v2().is_some();
    // Only the hierarchies that enforce something, and cgroup2 (which tracks the pod and
    // carries the eBPF device policy): making cgroups in the others (cpuset above all, whose
    // new cgroups must be given CPUs and memory nodes) costs start time and enforces nothing.
    let needed = |h: &Hierarchy| {
        let has = |c: &str| h.controllers.iter().any(|x| x == c);
        h.v2 || (want_memory && has("memory"))
            || (want_cpu && has("cpu"))
            || (want_devices && !has_v2 && has("devices"))
    };
    for h in layout.hierarchies.iter().filter(|h| needed(h)) {
        let pod = h.own.join(&pod_name);
        if h.v2 && !v2_controllers.is_empty() {
            if let Err(e) = enable_v2(&h.own, &v2_controllers) {
                warnings.push(format!(
                    "cannot delegate the {} controller(s) below {} ({e:#}); their limits are not enforced",
                    v2_controllers.join(" and "),
                    h.own.display()
                ));
                v2_controllers.clear();
            }
        }
        mkdir(&pod)?;
        out.pod_dirs.push(pod.clone());
        inherit_cpuset(h, &pod)?;
        let devices_v1 = !h.v2 && !has_v2 && h.controllers.iter().any(|c| c == "devices");
        if devices_v1 {
            // Before any child exists (the kernel refuses a new "deny all" then). The pod as
            // a whole may use what any of its apps may: v1 children can only narrow
            // their parent.
            if let Some(union) = device_union(apps) {
                restrict_devices(&pod, &union)?;
            }
        }

        let init = pod.join(INIT_CGROUP);
        let slice = pod.join(APPS_SLICE);
        if h.v2 {
            enable_v2(&pod, &v2_controllers)?;
        }
        mkdir(&slice)?;
        inherit_cpuset(h, &slice)?;
        if h.v2 {
            enable_v2(&slice, &v2_controllers)?;
        }
        // PID 1 joins only the hierarchy that tracks the pod (cgroup2, or each v1 one without
        // it): its cgroup exists only there, as an empty one costs a memory cgroup's setup
        // and teardown for nothing.
        let init_joins = h.v2 || !has_v2;
        if init_joins {
            mkdir(&init)?;
            inherit_cpuset(h, &init)?;
        }
        if init_joins && devices_v1 && apps.iter().all(|a| a.devices.is_some()) {
            restrict_devices(
                &init,
                &BASE_DEVICES
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )?;
        }
        if !h.v2 && !has_v2 {
            out.init_procs.push(init.join(V1_JOIN_FILE));
        }
        if h.v2 {
            out.v2_init = Some(init.clone());
        }
        out.devices_v1 |= devices_v1;
        for (i, app) in apps.iter().enumerate() {
            let dir = pod.join(app_cgroup(&app.name));
            mkdir(&dir)?;
            inherit_cpuset(h, &dir)?;
            if devices_v1 {
                if let Some(extra) = &app.devices {
                    let mut rules: Vec<String> =
                        BASE_DEVICES.iter().map(|s| s.to_string()).collect();
                    rules.extend(extra.iter().cloned());
                    restrict_devices(&dir, &rules)?;
                }
            }
            let serves = |c: &str| {
                if h.v2 {
                    v2_controllers.contains(&c)
                } else {
                    h.controllers.iter().any(|x| x == c)
                }
            };
            if serves("memory") {
                if let Some(bytes) = app.memory_bytes {
                    let file = if h.v2 {
                        "memory.max"
                    } else {
                        "memory.limit_in_bytes"
                    };
                    write_file(&dir.join(file), &bytes.to_string()).with_context(|| {
                        format!("app {}: cannot set its memory limit", app.name)
                    })?;
                }
                if app.memory_bytes.is_some() || out.app_memory[i].is_none() {
                    out.app_memory[i] = Some((dir.clone(), h.v2));
                }
            }
            if serves("cpu") {
                set_cpu(&dir, h.v2, app)?;
            }
            // An app joins cgroup2 (tracking, devices) and the v1 hierarchies that limit it.
            let limits_it = (serves("memory") && app.memory_bytes.is_some())
                || (serves("cpu") && (app.cpu_milli.is_some() || app.cpu_shares.is_some()))
                || (devices_v1 && app.devices.is_some());
            if !h.v2 && (limits_it || !has_v2) {
                out.app_procs[i].push(dir.join(V1_JOIN_FILE));
            }
            if h.v2 {
                out.v2_apps.push(dir.clone());
            }
        }
    }
    Ok((out, warnings))
}

fn set_cpu(dir: &Path, v2: bool, app: &AppLimits) -> Result<()> {
    let ctx = || format!("app {}: cannot set its CPU limit", app.name);
    if let Some(milli) = app.cpu_milli {
        // At least 1 ms per period: the kernel's minimum quota.
        let quota = (milli * CPU_PERIOD_US / 1000).max(1000);
        if v2 {
            write_file(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))
                .with_context(ctx)?;
        } else {
            write_file(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())
                .with_context(ctx)?;
            write_file(&dir.join("cpu.cfs_quota_us"), &quota.to_string()).with_context(ctx)?;
        }
    }
    if let Some(shares) = app.cpu_shares {
        if v2 {
            write_file(
                &dir.join("cpu.weight"),
                &shares_to_weight(shares).to_string(),
            )
            .with_context(ctx)?;
        } else {
            write_file(&dir.join("cpu.shares"), &shares.to_string()).with_context(ctx)?;
        }
    }
    Ok(())
}

/// Every device rule of every app; `None` when one app runs with devices open.
fn device_union(apps: &[AppLimits]) -> Option<Vec<String>> {
    let mut union: Vec<String> = BASE_DEVICES.iter().map(|s| s.to_string()).collect();
    for app in apps {
        for rule in app.devices.as_ref()? {
            if !union.contains(rule) {
                union.push(rule.clone());
            }
        }
    }
    Some(union)
}

/// v1 devices controller: deny everything, then allow `rules`.
fn restrict_devices(dir: &Path, rules: &[String]) -> Result<()> {
    write_file(&dir.join("devices.deny"), "a")?;
    for rule in rules {
        write_file(&dir.join("devices.allow"), rule)?;
    }
    Ok(())
}

/// Whether the kernel's OOM killer killed a process of the app's cgroup.
pub fn oom_killed(memory_dir: &Path, v2: bool) -> bool {
    let (file, key) = if v2 {
        ("memory.events", "oom_kill")
    } else {
        ("memory.oom_control", "oom_kill")
    };
    let Ok(text) = fs::read_to_string(memory_dir.join(file)) else {
        return false;
    };
    text.lines().any(|l| {
        let mut f = l.split_whitespace();
        f.next() == Some(key) && f.next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) > 0
    })
}

/// Removes a pod cgroup directory and everything below it, deepest first. A cgroup whose
/// last processes are still exiting is retried for a short while.
pub fn remove_tree(dir: &Path) -> Result<()> {
    let mut dirs = Vec::new();
    collect_dirs(dir, &mut dirs);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let mut tries = 0;
        loop {
            match fs::remove_dir(&d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove cgroup {}", d.display()))
                }
            }
        }
    }
    Ok(())
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    // cgroupfs directories are never symlinks; file_type() does not follow them anyway.
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
    if dir.is_dir() {
        out.push(dir.to_path_buf());
    }
}

/// The pod directories recorded in the pod's `cgroups` file, each checked to be this pod's
/// scope inside a mounted cgroup hierarchy (the file is in the pod directory; a wrong line
/// must never make gc remove anything else).
pub fn recorded_dirs(record: &str, uuid: &str, layout: &Layout) -> Result<Vec<PathBuf>> {
    let name = pod_cgroup_name(uuid);
    let mut out = Vec::new();
    for line in record.lines().filter(|l| !l.is_empty()) {
        let p = PathBuf::from(line);
        let inside = layout.hierarchies.iter().any(|h| p.starts_with(&h.mount));
        let normal = p.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        });
        if !inside || !normal || p.file_name().and_then(|n| n.to_str()) != Some(name.as_str()) {
            bail!("the pod's cgroups record names {line:?}, which is not this pod's cgroup");
        }
        out.push(p);
    }
    Ok(out)
}

pub mod devices;

#[cfg(test)]
mod tests;
