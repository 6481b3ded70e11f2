//! Pod directories under `<data dir>/pods/<state>/<uuid>` and their lifecycle (docs/stage-contract.md,
//! "Pod states").
//! A pod's state is the directory it is in plus whether its directory is `flock`ed.
pub mod copy;
pub mod dns;
pub mod gc;
pub mod info;
pub mod launch;
pub mod manifest;
pub mod overlay;
pub mod prepare;
pub mod setup;
pub mod uuid_file;

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use uuid::Uuid;

use std::collections::HashSet;

use store::{ImageKey, TreeId};

use crate::contract::{APPS_INFO, APP_TREE_ID, STAGE1_TREE_ID};
use crate::sys::{self, LockOutcome};

/// The state directories, in lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateDir {
    Embryo,
    Prepare,
    Prepared,
    Run,
    ExitedGarbage,
    Garbage,
}

impl StateDir {
    pub const ALL: [StateDir; 6] = [
        StateDir::Embryo,
        StateDir::Prepare,
        StateDir::Prepared,
        StateDir::Run,
        StateDir::ExitedGarbage,
        StateDir::Garbage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StateDir::Embryo => "embryo",
            StateDir::Prepare => "prepare",
            StateDir::Prepared => "prepared",
            StateDir::Run => "run",
            StateDir::ExitedGarbage => "exited-garbage",
            StateDir::Garbage => "garbage",
        }
    }
}

/// A pod's state as rkt reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    Embryo,
    Preparing,
    AbortedPrepare,
    Prepared,
    Running,
    Deleting,
    ExitedDeleting,
    Exited,
    ExitedGarbage,
    Garbage,
}

impl PodState {
    pub fn as_str(self) -> &'static str {
        match self {
            PodState::Embryo => "embryo",
            PodState::Preparing => "preparing",
            PodState::AbortedPrepare => "aborted prepare",
            PodState::Prepared => "prepared",
            PodState::Running => "running",
            PodState::Deleting => "deleting",
            PodState::ExitedDeleting => "exited deleting",
            PodState::Exited => "exited",
            PodState::ExitedGarbage => "exited garbage",
            PodState::Garbage => "garbage",
        }
    }

    /// Exited in any form (the apps have finished).
    pub fn is_exited(self) -> bool {
        matches!(
            self,
            PodState::Exited | PodState::ExitedGarbage | PodState::ExitedDeleting
        )
    }
}

impl fmt::Display for PodState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const PODS_DIR: &str = "pods";

/// `<data dir>/pods`.
#[derive(Debug, Clone)]
pub struct Pods {
    root: PathBuf,
}

impl Pods {
    pub fn new(data_dir: &Path) -> Pods {
        Pods {
            root: data_dir.join(PODS_DIR),
        }
    }

    /// `<data dir>/pods`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state_path(&self, state: StateDir) -> PathBuf {
        self.root.join(state.name())
    }

    /// Creates `pods` and its state directories as real directories: a symlink planted there
    /// would get its target chmodded and put pods where gc's mount table lookups miss them.
    pub fn ensure_dirs(&self) -> Result<()> {
        // The data directory itself may be a symlink: rkt canonicalizes `--dir`.
        let data = self.root.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let data_fd = sys::open_dir(data)?;
        // Pod roots (overlays of images) are for root only, as the store is.
        let pods = store::real_dir(data_fd.as_fd(), data, PODS_DIR, 0o750, true)?;
        for state in StateDir::ALL {
            store::real_dir(pods.as_fd(), &self.root, state.name(), 0o755, false)?;
        }
        Ok(())
    }

    /// Creates a new pod: `embryo/<uuid>` (0750), locked exclusively, then renamed to
    /// `prepare/<uuid>`. The lock stays held by the returned pod.
    pub fn create(&self) -> Result<Pod> {
        self.ensure_dirs()?;
        let uuid = Uuid::new_v4();
        let embryo = self.state_path(StateDir::Embryo).join(uuid.to_string());
        std::fs::create_dir(&embryo)
            .with_context(|| format!("cannot create pod directory {}", embryo.display()))?;
        set_mode(&embryo, 0o750)?;
        let fd = sys::open_dir(&embryo)?;
        sys::flock(fd.as_fd(), true, true)
            .with_context(|| format!("cannot lock {}", embryo.display()))?;
        let mut pod = Pod {
            uuid,
            pods: self.clone(),
            dir: StateDir::Embryo,
            state: PodState::Embryo,
            fd,
            locked: true,
        };
        pod.move_to(StateDir::Prepare)?;
        pod.state = PodState::Preparing;
        Ok(pod)
    }

    /// Every pod, in every state, sorted by UUID.
    pub fn all(&self) -> Result<Vec<Pod>> {
        let mut uuids = Vec::new();
        for state in StateDir::ALL {
            let dir = self.state_path(state);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Some(uuid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| Uuid::parse_str(n).ok())
                {
                    uuids.push(uuid);
                }
            }
        }
        uuids.sort();
        uuids.dedup();
        // A pod may move between listing and loading; those are skipped.
        Ok(uuids
            .into_iter()
            .filter_map(|u| self.load(u).ok())
            .collect())
    }

    /// Loads a pod by exact UUID, wherever it is.
    pub fn load(&self, uuid: Uuid) -> Result<Pod> {
        for state in StateDir::ALL {
            let path = self.state_path(state).join(uuid.to_string());
            let fd = match std::fs::File::open(&path) {
                Ok(f) => OwnedFd::from(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
            };
            let mut pod = Pod {
                uuid,
                pods: self.clone(),
                dir: state,
                state: PodState::Embryo,
                fd,
                locked: false,
            };
            pod.refresh_state()?;
            return Ok(pod);
        }
        bail!("no matches found for \"{uuid}\"")
    }

    /// Resolves a UUID or unambiguous, case-insensitive prefix among pods that users address.
    pub fn find(&self, prefix: &str) -> Result<Pod> {
        let wanted = prefix.to_ascii_lowercase();
        if wanted.is_empty() {
            bail!("UUID cannot be empty");
        }
        let mut matches = Vec::new();
        for state in [
            StateDir::Prepare,
            StateDir::Prepared,
            StateDir::Run,
            StateDir::ExitedGarbage,
        ] {
            let Ok(entries) = std::fs::read_dir(self.state_path(state)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with(&wanted) {
                    if let Ok(uuid) = Uuid::parse_str(name) {
                        if !matches.contains(&uuid) {
                            matches.push(uuid);
                        }
                    }
                }
            }
        }
        match matches.len() {
            0 => bail!("no matches found for \"{prefix}\""),
            1 => self.load(matches[0]),
            n => bail!("ambiguous uuid, {n} matches"),
        }
    }

    /// Reads a UUID from a file written by `--uuid-file-save`.
    pub fn find_from_file(&self, path: &Path) -> Result<Pod> {
        let content = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read UUID file {}", path.display()))?;
        self.find(content.trim())
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

/// An open pod directory. The directory descriptor carries the pod's lock.
#[derive(Debug)]
pub struct Pod {
    pub uuid: Uuid,
    pods: Pods,
    dir: StateDir,
    state: PodState,
    fd: OwnedFd,
    locked: bool,
}

impl Pod {
    pub fn path(&self) -> PathBuf {
        self.pods.state_path(self.dir).join(self.uuid.to_string())
    }

    pub fn state(&self) -> PodState {
        self.state
    }

    pub fn state_dir(&self) -> StateDir {
        self.dir
    }

    pub fn lock_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Re-reads the state from the directory and the lock (a shared-lock probe, as rkt).
    pub fn refresh_state(&mut self) -> Result<()> {
        // The pod may have moved since it was opened (prepare → run, run → exited-garbage).
        if let Some(dir) = StateDir::ALL.into_iter().find(|s| {
            self.pods
                .state_path(*s)
                .join(self.uuid.to_string())
                .exists()
        }) {
            self.dir = dir;
        }
        let base = match self.dir {
            StateDir::Embryo => PodState::Embryo,
            StateDir::Prepare => PodState::AbortedPrepare,
            StateDir::Prepared => PodState::Prepared,
            StateDir::Run => PodState::Exited,
            StateDir::ExitedGarbage => PodState::ExitedGarbage,
            StateDir::Garbage => PodState::Garbage,
        };
        if self.locked || matches!(self.dir, StateDir::Embryo | StateDir::Prepared) {
            self.state = if self.locked {
                locked_state(self.dir, base)
            } else {
                base
            };
            return Ok(());
        }
        let busy = match sys::flock(self.fd.as_fd(), false, false)
            .with_context(|| format!("cannot probe the lock of pod {}", self.uuid))?
        {
            LockOutcome::Acquired => {
                sys::unlock(self.fd.as_fd()).context("cannot release a lock probe")?;
                false
            }
            LockOutcome::Busy => true,
        };
        self.state = if busy {
            locked_state(self.dir, base)
        } else {
            base
        };
        Ok(())
    }

    /// Takes the pod's exclusive lock. Without `wait`, a busy lock is an error naming `what`.
    pub fn lock(&mut self, wait: bool) -> Result<bool> {
        if self.locked {
            return Ok(true);
        }
        match sys::flock(self.fd.as_fd(), true, wait)
            .with_context(|| format!("cannot lock pod {}", self.uuid))?
        {
            LockOutcome::Acquired => {
                self.locked = true;
                Ok(true)
            }
            LockOutcome::Busy => Ok(false),
        }
    }

    pub fn unlock(&mut self) -> Result<()> {
        if self.locked {
            sys::unlock(self.fd.as_fd())
                .with_context(|| format!("cannot unlock pod {}", self.uuid))?;
            self.locked = false;
        }
        Ok(())
    }

    /// Whether the directory this pod was opened as is no longer at its path: another process
    /// (a concurrent `rkt gc` or `rm`) moved or deleted it meanwhile.
    pub fn is_gone(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(at_path) = std::fs::symlink_metadata(self.path()) else {
            return true;
        };
        match nix::sys::stat::fstat(self.fd.as_fd()) {
            Ok(st) => st.st_dev != at_path.dev() || st.st_ino != at_path.ino(),
            Err(_) => true,
        }
    }

    /// Moves the pod to another state directory (one rename; the lock moves with the inode).
    pub fn move_to(&mut self, to: StateDir) -> Result<()> {
        let from = self.path();
        let dest = self.pods.state_path(to).join(self.uuid.to_string());
        self.pods.ensure_dirs()?;
        std::fs::rename(&from, &dest).with_context(|| {
            format!(
                "cannot move pod {} to {}",
                self.uuid,
                self.pods.state_path(to).display()
            )
        })?;
        // No fsync: a pod does not survive a crash of the machine anyway, and `rkt run`
        // should not wait on the disk.
        self.dir = to;
        self.refresh_state()
    }
}

fn locked_state(dir: StateDir, base: PodState) -> PodState {
    match dir {
        StateDir::Prepare => PodState::Preparing,
        StateDir::Run => PodState::Running,
        StateDir::ExitedGarbage => PodState::ExitedDeleting,
        StateDir::Garbage => PodState::Deleting,
        _ => base,
    }
}

/// Trees that pods still use (prepare, prepared, run and exited-garbage pods), which image gc
/// must keep.
pub fn trees_in_use(data_dir: &Path) -> Result<HashSet<TreeId>> {
    let pods = Pods::new(data_dir);
    let mut used = HashSet::new();
    for state in [
        StateDir::Prepare,
        StateDir::Prepared,
        StateDir::Run,
        StateDir::ExitedGarbage,
    ] {
        let Ok(entries) = std::fs::read_dir(pods.state_path(state)) else {
            continue;
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let mut files = vec![dir.join(STAGE1_TREE_ID)];
            if let Ok(apps) = std::fs::read_dir(dir.join(APPS_INFO)) {
                files.extend(apps.flatten().map(|a| a.path().join(APP_TREE_ID)));
            }
            for f in files {
                if let Some(id) = std::fs::read_to_string(&f)
                    .ok()
                    .and_then(|s| TreeId::parse(s.trim()))
                {
                    used.insert(id);
                }
            }
        }
    }
    Ok(used)
}

/// Images of running pods, which image gc must keep.
pub fn images_in_use(data_dir: &Path) -> Result<HashSet<ImageKey>> {
    let mut used = HashSet::new();
    for pod in Pods::new(data_dir).all()? {
        if pod.state() != PodState::Running {
            continue;
        }
        if let Some(m) = pod.manifest() {
            used.extend(
                m.apps
                    .iter()
                    .filter_map(|a| ImageKey::parse(&a.image.id).ok()),
            );
        }
    }
    Ok(used)
}
