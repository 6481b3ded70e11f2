//! The isolators stage1 enforces beyond capabilities (docs/stage-contract.md, "Cgroups" and
//! "Seccomp"): it creates the pod's cgroups with the apps' limits and device policy, compiles
//! each app's seccomp filter, and tells stage2-init in the plan what to apply. The cgroups go
//! when this value is dropped, at the end of `run`; `gc` removes what a killed stage1 left.
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use aci::isolator::{self, Known};
use aci::schema::App;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::args::RunArgs;
use crate::cgroup::{self, AppLimits, Layout};
use crate::contract::SECCOMP_DIR;
use crate::plan::{AppPlan, MountSource};
use crate::setup::RuntimeFile;
use crate::sys;

/// `<pod>/cgroups`: the pod's cgroup directories, one per hierarchy, for `gc`.
pub const CGROUPS_RECORD: &str = "cgroups";

/// The pod's cgroups and what stage1 keeps open for them while the pod runs.
pub struct PodConfinement {
    /// For the pod's PID 1 ([`crate::sys::Op::JoinCgroups`]): its v1 cgroups.
    pub init_fds: Vec<OwnedFd>,
    /// PID 1's cgroup2 directory (cloned into) and `cgroup.procs` (the fallback).
    pub init_v2: Option<(OwnedFd, OwnedFd)>,
    /// Inherited by stage2-init; closed here when stage1 exits.
    _app_fds: Vec<OwnedFd>,
    /// Each app's seccomp programs, for the pod's runtime directory.
    pub seccomp_files: Vec<RuntimeFile>,
    /// What is left to do when the pod has exited; done on drop unless handed over.
    after_exit: Option<CgroupsAfterExit>,
}

/// The pod's cgroups as far as the end of the pod is concerned: what to check for OOM kills
/// and what to remove. Serializable, so that the cleanup after the waiter
/// (docs/stage-contract.md, "The waiter") can do it in another process image.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CgroupsAfterExit {
    /// The pod's directory in each hierarchy.
    pod_dirs: Vec<PathBuf>,
    /// `<pod>/cgroups`, removed with the last of them.
    record: PathBuf,
    /// Apps with a memory limit: where the kernel counts their OOM kills.
    memory: Vec<MemoryWatch>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct MemoryWatch {
    app: String,
    limit: i64,
    dir: PathBuf,
    v2: bool,
}

/// The isolator values stage1 reads, the last of each kind winning (rkt's order).
#[derive(Default)]
struct Wanted {
    memory: Option<i64>,
    cpu: Option<i64>,
    shares: Option<u32>,
    oom: Option<i32>,
    no_new_privileges: bool,
}

fn wanted(app_name: &str, app: &App) -> Result<Wanted> {
    let mut w = Wanted::default();
    for iso in &app.isolators {
        let known = isolator::parse(iso).with_context(|| format!("app {app_name}"))?;
        match known {
            Some(Known::Memory(r)) => w.memory = r.limit.map(|q| q.value()).or(w.memory),
            Some(Known::Cpu(r)) => w.cpu = r.limit.map(|q| q.milli_value()).or(w.cpu),
            Some(Known::CpuShares(n)) => w.shares = Some(n),
            Some(Known::OomScoreAdj(n)) => w.oom = Some(n),
            Some(Known::NoNewPrivileges(b)) => w.no_new_privileges = b,
            _ => {}
        }
    }
    Ok(w)
}

/// `c 10:200 rw` for each device volume of the app (read-only mounts: `r`).
fn device_rules(app: &AppPlan) -> Result<Vec<String>> {
    let mut rules = Vec::new();
    for m in &app.mounts {
        let MountSource::Host {
            path, device: true, ..
        } = &m.source
        else {
            continue;
        };
        let meta = fs::metadata(path).with_context(|| format!("cannot stat device {path}"))?;
        let kind = if meta.file_type().is_char_device() {
            'c'
        } else {
            'b'
        };
        let rdev = meta.rdev();
        let access = if m.read_only { "r" } else { "rw" };
        rules.push(format!(
            "{kind} {}:{} {access}",
            libc::major(rdev),
            libc::minor(rdev)
        ));
    }
    Ok(rules)
}

/// A cgroup2 directory, for clone3's CLONE_INTO_CGROUP.
fn open_dir(path: &Path) -> Result<OwnedFd> {
    let f = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(OwnedFd::from(f))
}

fn open_procs(path: &Path) -> Result<OwnedFd> {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(OwnedFd::from(f))
}

/// Prepares every app's confinement and fills in `apps[i].launch.confine`.
pub fn prepare(
    pod_dir: &Path,
    args: &RunArgs,
    apps: &mut [AppPlan],
    images: &[App],
) -> Result<PodConfinement> {
    let mut limits = Vec::new();
    let mut memory = Vec::new();
    let mut seccomp_files = Vec::new();
    for (plan, app) in apps.iter_mut().zip(images) {
        let name = plan.launch.name.clone();
        let w = wanted(&name, app)?;
        let filter = if args.disable_seccomp {
            None
        } else {
            crate::seccomp::for_app(&name, &app.isolators)?
        };
        if let Some(bytes) = filter {
            let path = format!("{SECCOMP_DIR}/{name}");
            plan.launch.confine.seccomp = Some(format!("/{path}"));
            seccomp_files.push(RuntimeFile {
                path,
                data: bytes,
                mode: 0o600,
            });
        }
        // rkt: a non-root app with any filter also gets no-new-privileges.
        plan.launch.confine.no_new_privileges =
            w.no_new_privileges || (plan.launch.confine.seccomp.is_some() && plan.launch.uid != 0);
        plan.launch.confine.oom_score_adj = w.oom;
        limits.push(AppLimits {
            name: name.clone(),
            memory_bytes: w.memory,
            cpu_milli: w.cpu,
            cpu_shares: w.shares.map(u64::from),
            devices: if args.disable_paths {
                None
            } else {
                Some(device_rules(plan)?)
            },
        });
        memory.push((name, w.memory));
    }
    let record = pod_dir.join(CGROUPS_RECORD);
    let mut out = PodConfinement {
        init_fds: Vec::new(),
        init_v2: None,
        _app_fds: Vec::new(),
        seccomp_files,
        after_exit: None,
    };
    let layout = Layout::detect()?;
    if layout.kind() == cgroup::Kind::None {
        if limits
            .iter()
            .any(|l| l.memory_bytes.is_some() || l.cpu_milli.is_some() || l.cpu_shares.is_some())
        {
            eprintln!("stage1: warning: no cgroup file system is mounted: memory and CPU limits are not enforced");
        }
        return Ok(out);
    }
    // Recorded before anything is created, so gc finds whatever a failure leaves.
    let dirs: Vec<String> = layout
        .hierarchies
        .iter()
        .map(|h| {
            h.own
                .join(cgroup::pod_cgroup_name(&args.uuid))
                .display()
                .to_string()
        })
        .collect();
    fs::write(&record, dirs.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", record.display()))?;
    let created = cgroup::create(&layout, &args.uuid, &limits);
    let (cgroups, warnings) = match created {
        Ok(c) => c,
        Err(e) => {
            for dir in &dirs {
                let _ = cgroup::remove_tree(Path::new(dir));
            }
            return Err(e.context("cannot set up the pod's cgroups"));
        }
    };
    out.after_exit = Some(CgroupsAfterExit {
        pod_dirs: cgroups.pod_dirs.clone(),
        record,
        memory: memory
            .into_iter()
            .zip(&cgroups.app_memory)
            .filter_map(|((app, limit), mem)| {
                let (dir, v2) = mem.clone()?;
                Some(MemoryWatch {
                    app,
                    limit: limit?,
                    dir,
                    v2,
                })
            })
            .collect(),
    });
    let cgroups = &cgroups;
    for w in warnings {
        eprintln!("stage1: warning: {w}");
    }
    let device_rules: Vec<Option<Vec<String>>> = limits.iter().map(|l| l.devices.clone()).collect();
    if let Some(warning) = attach_device_programs(cgroups, &device_rules) {
        eprintln!("stage1: warning: {warning}");
    }
    for path in &cgroups.init_procs {
        out.init_fds.push(open_procs(path)?);
    }
    if let Some(init) = &cgroups.v2_init {
        out.init_v2 = Some((open_dir(init)?, open_procs(&init.join("cgroup.procs"))?));
    }
    for (i, (plan, procs)) in apps.iter_mut().zip(&cgroups.app_procs).enumerate() {
        let mut inherit = |fd: OwnedFd| -> Result<i32> {
            sys::set_inheritable(fd.as_raw_fd())?;
            let raw = fd.as_raw_fd();
            out._app_fds.push(fd);
            Ok(raw)
        };
        for path in procs {
            let fd = inherit(open_procs(path)?)?;
            plan.launch.confine.cgroup_fds.push(fd);
        }
        if let Some(dir) = cgroups.v2_apps.get(i) {
            let dir_fd = inherit(open_dir(dir)?)?;
            let procs_fd = inherit(open_procs(&dir.join("cgroup.procs"))?)?;
            plan.launch.confine.cgroup_v2 = Some((dir_fd, procs_fd));
        }
    }
    Ok(out)
}

fn insns(rules: &[String]) -> Result<Vec<u8>> {
    let parsed = rules
        .iter()
        .map(|r| cgroup::devices::parse_rule(r))
        .collect::<Result<Vec<_>>>()?;
    Ok(cgroup::devices::program(&parsed)
        .into_iter()
        .flat_map(|i| i.to_bytes())
        .collect())
}

/// The closed device policy on cgroup2 (on hybrid hosts too, on top of the v1 controller):
/// one eBPF program for PID 1 and one per app. A warning when the policy holds nowhere.
fn attach_device_programs(
    cgroups: &cgroup::PodCgroups,
    rules: &[Option<Vec<String>>],
) -> Option<String> {
    let base: Vec<String> = cgroup::BASE_DEVICES.iter().map(|s| s.to_string()).collect();
    if rules.iter().any(Option::is_none) {
        return None; // --insecure-options=paths
    }
    let attach = || -> Result<()> {
        let Some(init) = &cgroups.v2_init else {
            return Ok(());
        };
        // One program for every cgroup with just the base rules: loading (the kernel's
        // verifier) costs far more than attaching.
        let prog = sys::load_device_program(&insns(&base)?)?;
        sys::attach_device_program(init, &prog)?;
        for (dir, extra) in cgroups.v2_apps.iter().zip(rules.iter().flatten()) {
            if extra.is_empty() {
                sys::attach_device_program(dir, &prog)?;
                continue;
            }
            let mut all = base.clone();
            all.extend(extra.iter().cloned());
            let own = sys::load_device_program(&insns(&all)?)?;
            sys::attach_device_program(dir, &own)?;
        }
        Ok(())
    };
    let result = attach();
    let enforced = cgroups.devices_v1 || (cgroups.v2_init.is_some() && result.is_ok());
    match (enforced, result) {
        (true, _) => None,
        (false, Err(e)) => Some(format!(
            "the device policy is not enforced by a cgroup ({e:#}); device nodes still work only where stage1 binds them"
        )),
        (false, Ok(())) => Some(
            "no devices cgroup controller or cgroup2 hierarchy: the device policy is not enforced by a cgroup; device nodes still work only where stage1 binds them".to_string(),
        ),
    }
}

impl PodConfinement {
    /// Tells the caller which apps the kernel's OOM killer hit.
    pub fn report_oom(&self) {
        if let Some(after) = &self.after_exit {
            after.report_oom();
        }
    }

    /// What the cleanup after the waiter must do with the pod's cgroups (this value still
    /// removes them when dropped: a successful hand-over replaces the process instead).
    pub fn after_exit(&self) -> CgroupsAfterExit {
        self.after_exit.clone().unwrap_or_default()
    }
}

impl Drop for PodConfinement {
    fn drop(&mut self) {
        if let Some(after) = self.after_exit.take() {
            after.remove();
        }
    }
}

impl CgroupsAfterExit {
    /// Tells the caller which apps the kernel's OOM killer hit.
    pub fn report_oom(&self) {
        for w in &self.memory {
            if cgroup::oom_killed(&w.dir, w.v2) {
                eprintln!(
                    "stage1: app {} was killed by the kernel's OOM killer: it used more than its memory limit of {} bytes",
                    w.app, w.limit
                );
            }
        }
    }

    /// Removes the pod's cgroups, and their record once they are all gone.
    pub fn remove(&self) {
        let mut all_gone = true;
        for dir in &self.pod_dirs {
            if let Err(e) = cgroup::remove_tree(dir) {
                eprintln!("stage1: warning: {e:#} (rkt gc removes it later)");
                all_gone = false;
            }
        }
        if all_gone && !self.pod_dirs.is_empty() {
            let _ = fs::remove_file(&self.record);
        }
    }
}

/// `gc`: removes the cgroups recorded for the pod in the current directory.
pub fn collect(uuid: &str) -> Result<()> {
    let record = Path::new(CGROUPS_RECORD);
    let text = match fs::read_to_string(record) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context("cannot read the pod's cgroups record"),
    };
    let layout = Layout::detect()?;
    for dir in cgroup::recorded_dirs(&text, uuid, &layout)? {
        cgroup::remove_tree(&dir)?;
    }
    fs::remove_file(record).context("cannot remove the pod's cgroups record")?;
    Ok(())
}
