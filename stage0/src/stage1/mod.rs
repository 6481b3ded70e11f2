//! The stage1 of a pod and its entrypoints: `run`, `enter`, `gc` and `stop`, named by the
//! stage1 manifest's annotations and called with the documented arguments, gated by the
//! interface version (docs/stage-contract.md, "Entrypoints"). This is the only place that
//! builds an entrypoint's command line or executes one.
//!
//! Every entrypoint runs from a sealed in-memory copy that was checked against the stage1
//! image's ID on the way (see [`verified`]): never from the pod's stage1 root, which its apps
//! may write, nor from the rendered tree, which a file's executable could have been opened
//! through.
mod source;
mod verified;

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use aci::schema::ImageManifest;
use anyhow::{anyhow, bail, Context, Result};
use store::{ImageKey, Store, TreeId};

pub use source::{resolve, Stage1Source};
pub use verified::Program;

use crate::contract::{
    ANN_ENTER, ANN_GC, ANN_INTERFACE_VERSION, ANN_RUN, ANN_STOP, LOCK_FD_ENV, STAGE1_MANIFEST,
    STAGE1_TREE_ID,
};
use crate::sys;

/// One of the stage1 entrypoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entrypoint {
    Run,
    Enter,
    Gc,
    Stop,
}

impl Entrypoint {
    fn annotation(self) -> &'static str {
        match self {
            Entrypoint::Run => ANN_RUN,
            Entrypoint::Enter => ANN_ENTER,
            Entrypoint::Gc => ANN_GC,
            Entrypoint::Stop => ANN_STOP,
        }
    }
}

/// Flags of the stage1 `run` entrypoint.
#[derive(Debug, Clone, Default)]
pub struct RunFlags {
    pub debug: bool,
    pub net: String,
    pub interactive: bool,
    pub local_config: PathBuf,
    pub hostname: Option<String>,
    pub dns_conf_mode: Option<String>,
    pub disable_capabilities: bool,
    pub disable_paths: bool,
    pub disable_seccomp: bool,
    pub ipc: Option<String>,
    /// `SHIFT:COUNT` of the pod's user namespace.
    pub private_users: Option<String>,
    /// The pod's token with the metadata service (`--mds-register`).
    pub mds_token: Option<String>,
}

/// A pod's stage1: its manifest (as stage0 wrote it into the root-only pod directory) and the
/// stored images its tree was rendered from.
pub struct Stage1 {
    manifest: ImageManifest,
    version: u32,
    tree: TreeId,
    /// The tree's images, dependencies first.
    images: Vec<ImageKey>,
}

impl Stage1 {
    /// The stage1 a prepared or running pod was made with.
    pub fn of_pod(store: &Store, pod_dir: &Path) -> Result<Stage1> {
        let path = pod_dir.join(STAGE1_MANIFEST);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let manifest = ImageManifest::from_slice(&bytes)
            .with_context(|| format!("invalid stage1 manifest {}", path.display()))?;
        let version = interface_version(&manifest)?;
        let recorded = std::fs::read_to_string(pod_dir.join(STAGE1_TREE_ID))
            .context("error getting stage1 treeStoreID")?;
        let tree = TreeId::parse(recorded.trim())
            .with_context(|| format!("invalid stage1 tree id {:?}", recorded.trim()))?;
        let info = store.tree(&tree)?.with_context(|| {
            format!("the stage1 image of this pod is no longer in the store (tree {tree})")
        })?;
        Ok(Stage1 {
            manifest,
            version,
            tree,
            images: info.images,
        })
    }

    /// The entrypoint's path in the stage1 root, if the image has it.
    pub fn entrypoint(&self, which: Entrypoint) -> Option<&str> {
        self.manifest.annotation(which.annotation())
    }

    fn require(&self, which: Entrypoint) -> Result<&str> {
        self.entrypoint(which).ok_or_else(|| {
            anyhow!(
                "stage1 image {} has no {} annotation",
                self.manifest.name,
                which.annotation()
            )
        })
    }

    /// `<run> [--debug] --net=<list> [--interactive] --local-config=<dir> [--hostname=<h>]
    /// [--dns-conf-mode=<m>] [--disable-*] [--ipc=<m>] <uuid>`, dropping (with a warning)
    /// what the stage1's interface version does not know.
    pub fn run_argv(
        &self,
        flags: &RunFlags,
        uuid: &str,
        warn: &dyn Fn(&str),
    ) -> Result<Vec<String>> {
        Ok(run_argv(
            self.require(Entrypoint::Run)?,
            self.version,
            flags,
            uuid,
            warn,
        ))
    }

    /// Replaces rkt with the `run` entrypoint, cwd the pod directory, handing over the pod
    /// lock as `RKT_LOCK_FD`. Only returns on failure.
    pub fn exec_run(
        program: &Program,
        pod_dir: &Path,
        argv: &[String],
        lock: BorrowedFd<'_>,
    ) -> anyhow::Error {
        if let Err(e) = std::env::set_current_dir(pod_dir) {
            return anyhow::Error::new(e)
                .context(format!("cannot enter pod directory {}", pod_dir.display()));
        }
        if let Err(e) = sys::clear_cloexec(lock) {
            return e;
        }
        let mut env: Vec<(String, String)> =
            std::env::vars().filter(|(k, _)| k != LOCK_FD_ENV).collect();
        env.push((LOCK_FD_ENV.into(), lock.as_raw_fd().to_string()));
        sys::exec_fd(&program.file, argv, &env)
    }

    /// Replaces rkt with `<enter> --pid=<pid> --appname=<app> -- <command...>`, cwd the pod
    /// directory. Only returns on failure.
    pub fn exec_enter(
        &self,
        store: &Store,
        pod_dir: &Path,
        pid: i32,
        app: &str,
        command: &[String],
    ) -> anyhow::Error {
        let entry = match self.require(Entrypoint::Enter) {
            Ok(e) => e.to_string(),
            Err(e) => return e,
        };
        let program = match self.program(store, Entrypoint::Enter) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let mut argv = vec![
            entry,
            format!("--pid={pid}"),
            format!("--appname={app}"),
            "--".into(),
        ];
        argv.extend(command.iter().cloned());
        if let Err(e) = std::env::set_current_dir(pod_dir) {
            return anyhow::Error::new(e).context(format!("cannot enter {}", pod_dir.display()));
        }
        let env: Vec<(String, String)> = std::env::vars().collect();
        sys::exec_fd(&program.file, &argv, &env)
    }

    /// Runs `<gc> [--debug] [--local-config=<dir>] <uuid>` (the flag from interface version
    /// 5) in the pod directory. `Ok(false)`: the stage1 has no gc entrypoint.
    pub fn gc(
        &self,
        store: &Store,
        pod_dir: &Path,
        debug: bool,
        local_config: &Path,
        uuid: &str,
        loaded: &mut LoadedPrograms,
    ) -> Result<bool> {
        let Some(entry) = self.entrypoint(Entrypoint::Gc) else {
            return Ok(false);
        };
        let mut args = Vec::new();
        if debug {
            args.push("--debug".to_string());
        }
        if self.version >= 5 {
            args.push(format!("--local-config={}", local_config.display()));
        }
        args.push(uuid.to_string());
        let key = (self.tree.clone(), entry.to_string());
        if !loaded.0.contains_key(&key) {
            let program = self.program(store, Entrypoint::Gc)?;
            loaded.0.insert(key.clone(), program);
        }
        run_program(&loaded.0[&key], entry, pod_dir, &args)?;
        Ok(true)
    }

    /// Runs `<stop> [--force] <uuid>` in the pod directory.
    pub fn stop(&self, store: &Store, pod_dir: &Path, force: bool, uuid: &str) -> Result<()> {
        let mut args = Vec::new();
        if force {
            args.push("--force".to_string());
        }
        args.push(uuid.to_string());
        self.run_child(store, pod_dir, Entrypoint::Stop, &args)
    }

    fn run_child(
        &self,
        store: &Store,
        pod_dir: &Path,
        which: Entrypoint,
        args: &[String],
    ) -> Result<()> {
        let entry = self.require(which)?;
        let program = self.program(store, which)?;
        run_program(&program, entry, pod_dir, args)
    }

    /// The entrypoint as a sealed in-memory copy taken from the verified stage1 image.
    pub fn program(&self, store: &Store, which: Entrypoint) -> Result<Program> {
        let entry = self.require(which)?;
        verified::program(store, &self.tree, &self.images, entry).with_context(|| {
            format!(
                "cannot load the stage1 {entry} entrypoint of {} from the store",
                self.manifest.name
            )
        })
    }
}

/// Entrypoint copies already loaded in this process, by stage1 tree and entrypoint: `rkt gc`
/// runs the same stage1's gc entrypoint for many pods, and loading it means reading and
/// hashing the whole stage1 blob. A sealed copy can be executed any number of times.
#[derive(Default)]
pub struct LoadedPrograms(HashMap<(TreeId, String), Program>);

/// Runs a sealed entrypoint copy as a child in the pod directory and waits for it.
fn run_program(program: &Program, entry: &str, pod_dir: &Path, args: &[String]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    // Executing /proc/self/fd/<n> runs exactly the sealed copy; argv[0] stays the
    // entrypoint's name, which a multi-call stage1 dispatches on.
    let status = Command::new(format!("/proc/self/fd/{}", program.file.as_raw_fd()))
        .arg0(entry)
        .args(args)
        .current_dir(pod_dir)
        .status()
        .with_context(|| format!("cannot run the stage1 {entry} entrypoint"))?;
    if !status.success() {
        bail!("stage1 {entry} exited with {status}");
    }
    Ok(())
}

/// The stage1 interface version (absent means 1).
fn interface_version(manifest: &ImageManifest) -> Result<u32> {
    match manifest.annotation(ANN_INTERFACE_VERSION) {
        None => Ok(1),
        Some(v) => v
            .parse()
            .map_err(|_| anyhow!("stage1 interface version {v:?} is not an integer")),
    }
}

/// See [`Stage1::run_argv`].
fn run_argv(
    entry: &str,
    version: u32,
    flags: &RunFlags,
    uuid: &str,
    warn: &dyn Fn(&str),
) -> Vec<String> {
    let mut argv = vec![entry.to_string()];
    if flags.debug {
        argv.push("--debug".into());
    }
    argv.push(format!("--net={}", flags.net));
    if flags.interactive {
        argv.push("--interactive".into());
    }
    if let Some(range) = &flags.private_users {
        argv.push(format!("--private-users={range}"));
    }
    if let Some(token) = &flags.mds_token {
        argv.push(format!("--mds-token={token}"));
    }
    argv.push(format!("--local-config={}", flags.local_config.display()));
    if let Some(h) = &flags.hostname {
        if version >= 2 {
            argv.push(format!("--hostname={h}"));
        } else {
            warn("--hostname is not supported by the stage1 (interface version < 2), ignoring");
        }
    }
    if let Some(mode) = &flags.dns_conf_mode {
        if version >= 4 {
            argv.push(format!("--dns-conf-mode={mode}"));
        }
    }
    for (set, flag) in [
        (
            flags.disable_capabilities,
            "--disable-capabilities-restriction",
        ),
        (flags.disable_paths, "--disable-paths"),
        (flags.disable_seccomp, "--disable-seccomp"),
    ] {
        if set {
            if version >= 3 {
                argv.push(flag.into());
            } else {
                warn(&format!(
                    "{flag} is not supported by the stage1 (interface version < 3), ignoring"
                ));
            }
        }
    }
    if let Some(ipc) = &flags.ipc {
        if version >= 6 {
            argv.push(format!("--ipc={ipc}"));
        } else {
            warn("--ipc is not supported by the stage1 (interface version < 6), ignoring");
        }
    }
    argv.push(uuid.to_string());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_gated_by_interface_version() {
        let flags = RunFlags {
            net: "host".into(),
            local_config: "/etc/rkt".into(),
            hostname: Some("h".into()),
            ipc: Some("private".into()),
            ..RunFlags::default()
        };
        let warned = std::cell::RefCell::new(Vec::new());
        let warn = |m: &str| warned.borrow_mut().push(m.to_string());
        let v1 = run_argv("/init", 1, &flags, "u", &warn);
        assert_eq!(v1, ["/init", "--net=host", "--local-config=/etc/rkt", "u"]);
        assert_eq!(warned.borrow().len(), 2);
        let v6 = run_argv("/init", 6, &flags, "u", &warn);
        assert_eq!(
            v6,
            [
                "/init",
                "--net=host",
                "--local-config=/etc/rkt",
                "--hostname=h",
                "--ipc=private",
                "u"
            ]
        );
    }
}
