//! Handing a running pod over to the waiter (docs/stage-contract.md, "The waiter").
//!
//! stage1 is a few MiB of code, most of which a running pod never needs again. Once a pod has
//! run for [`HAND_OVER_AFTER`], stage1 replaces itself with stage2-init in its waiter mode,
//! executed from the store's rendered stage1 tree: the very file the pod's PID 1 runs through
//! its overlay, whose pages all pods of that stage1 share. The waiter holds the pod lock,
//! forwards signals to PID 1 and collects its exit status, then executes this program again
//! (the file stage0 executed, kept open) as [`CLEANUP_ENTRY`]: that does what `run` does once
//! the pod has exited and exits with the pod's status.
//!
//! Short pods never hand over: for them the two `exec`s would cost more than they save.
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::confine::CgroupsAfterExit;
use crate::contract::{LOCK_FD_ENV, OVERLAY_PREPARED, STAGE1_TREE_ID};
use crate::{net, sys};

/// How long a pod runs before stage1 hands it over to the waiter.
pub const HAND_OVER_AFTER: Duration = Duration::from_millis(250);

/// The cleanup's `argv[0]`: an entrypoint of this binary for the waiter only, not named in the
/// stage1 manifest.
pub const CLEANUP_ENTRY: &str = "cleanup";

/// Our stage1 image's PID 1, at its root (see the Makefile).
const STAGE2_INIT_FILE: &str = "stage2-init";

/// The waiter, opened from the store's tree before the pod starts, and this program.
pub struct Handoff {
    waiter: File,
    stage1: File,
}

/// What `run` still has to do when the pod has exited, passed to the cleanup.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct AfterExit {
    pub uuid: String,
    pub local_config: String,
    pub debug: bool,
    /// Whether the pod has networks to tear down.
    pub network: bool,
    pub cgroups: CgroupsAfterExit,
}

impl Handoff {
    /// Opens the files the hand-over needs, or says why this pod cannot be handed over: it
    /// must use overlays (stage0's layout, `<data dir>/pods/run/<uuid>` next to
    /// `<data dir>/cas/tree/<tree>`), nothing in its upper layer may shadow stage2-init, so
    /// that PID 1 runs the very file opened here, and this program must be a file (not an
    /// in-memory copy, which the cleanup would keep in memory). Must run before the pod starts.
    pub fn prepare(pod_dir: &Path) -> Result<Handoff> {
        if !pod_dir.join(OVERLAY_PREPARED).exists() {
            bail!("the pod's stage1 root is a copy, not an overlay of the store's tree");
        }
        let tree = std::fs::read_to_string(pod_dir.join(STAGE1_TREE_ID))
            .context("cannot read the stage1 tree id")?;
        let tree = tree.trim();
        let plain = |s: &str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !plain(tree) {
            bail!("unexpected stage1 tree id {tree:?}");
        }
        let data_dir = pod_dir
            .parent()
            .filter(|run| run.file_name().is_some_and(|n| n == "run"))
            .and_then(Path::parent)
            .filter(|pods| pods.file_name().is_some_and(|n| n == "pods"))
            .and_then(Path::parent)
            .context("the pod directory is not <data dir>/pods/run/<uuid>")?;
        let upper = pod_dir.join("overlay").join(tree).join("upper");
        if upper.join(STAGE2_INIT_FILE).symlink_metadata().is_ok() {
            bail!("the pod's upper layer has its own {STAGE2_INIT_FILE}");
        }
        // What stage0 executed: the stage1 tree's file it verified, or a sealed copy.
        let exe = std::fs::read_link("/proc/self/exe").context("cannot read /proc/self/exe")?;
        if exe.starts_with("/memfd:") {
            bail!("stage1 runs from an in-memory copy");
        }
        let stage1 = File::open("/proc/self/exe").context("cannot open /proc/self/exe")?;
        let data =
            File::open(data_dir).with_context(|| format!("cannot open {}", data_dir.display()))?;
        let open = |name: &str| -> Result<File> {
            let path = format!("cas/tree/{tree}/rootfs/{name}");
            let file = sys::open_file_beneath(data.as_fd(), &path)?;
            let meta = file
                .metadata()
                .with_context(|| format!("cannot stat {path}"))?;
            if !meta.is_file() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
                bail!("{path} is not a regular file that only root can write");
            }
            Ok(file)
        };
        Ok(Handoff {
            waiter: open(STAGE2_INIT_FILE)?,
            stage1,
        })
    }

    /// Replaces this process with the waiter for the pod's PID 1 `pid1`. Only the pod lock and
    /// this binary (for the cleanup) stay open across the `exec`. Returns only on failure, with
    /// nothing of the pod changed: stage1 then goes on supervising it itself.
    pub fn exec(&self, pid1: i32, after: &AfterExit) -> anyhow::Error {
        match self.prepare_exec(pid1, after) {
            Ok((argv, env)) => sys::exec_fd(self.waiter.as_fd(), &argv, &env),
            Err(e) => e,
        }
    }

    #[allow(clippy::type_complexity)]
    fn prepare_exec(
        &self,
        pid1: i32,
        after: &AfterExit,
    ) -> Result<(Vec<String>, Vec<(String, String)>)> {
        let state = serde_json::to_string(after).context("cannot serialize the cleanup's state")?;
        sys::cloexec_from(3)?;
        if let Some(lock) = std::env::var(LOCK_FD_ENV)
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
        {
            sys::set_inheritable(lock)?;
        }
        let stage1 = self.stage1.as_raw_fd();
        sys::set_inheritable(stage1)?;
        let argv = [
            "stage1-waiter",
            "--wait",
            &pid1.to_string(),
            &stage1.to_string(),
            "--",
            CLEANUP_ENTRY,
            "--after-exit",
            &state,
        ]
        .map(str::to_string)
        .to_vec();
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Ok((argv, env))
    }
}

/// The `cleanup` entrypoint: `--after-exit JSON --exit-status=N`, as the waiter calls it.
/// Does what `run` does after the pod's exit, in the same order, and returns the status.
pub fn cleanup(args: &[String]) -> Result<i32> {
    let (after, status) = parse_cleanup_args(args)?;
    after.cgroups.report_oom();
    after.cgroups.remove();
    if after.network {
        let pod_dir = std::env::current_dir().context("cannot get the pod directory")?;
        let s1root = pod_dir.join(crate::contract::STAGE1_ROOTFS);
        net::teardown_after_exit(&net::NetContext {
            pod_dir: &pod_dir,
            s1root: &s1root,
            uuid: &after.uuid,
            local_config: Path::new(&after.local_config),
            debug: after.debug,
        });
    }
    Ok(status)
}

fn parse_cleanup_args(args: &[String]) -> Result<(AfterExit, i32)> {
    let mut after = None;
    let mut status = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--after-exit" {
            let json = rest.next().context("--after-exit needs a value")?;
            after = Some(
                serde_json::from_str::<AfterExit>(json).context("invalid --after-exit state")?,
            );
        } else if let Some(n) = arg.strip_prefix("--exit-status=") {
            status = Some(
                n.parse::<i32>()
                    .with_context(|| format!("invalid --exit-status {n:?}"))?,
            );
        } else {
            bail!("unexpected cleanup argument {arg:?}");
        }
    }
    match (after, status) {
        (Some(a), Some(s)) => Ok((a, s)),
        _ => bail!("the cleanup needs --after-exit and --exit-status (it is run by the waiter)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cleanup_reads_back_what_the_hand_over_writes() {
        let after = AfterExit {
            uuid: "0b3c1bc6-8b1a-4b59-a41a-3f1c8b7cbbbd".into(),
            local_config: "/etc/rkt".into(),
            debug: true,
            network: true,
            cgroups: CgroupsAfterExit::default(),
        };
        let json = serde_json::to_string(&after).unwrap();
        let args = ["--after-exit".to_string(), json, "--exit-status=137".into()];
        let (back, status) = parse_cleanup_args(&args).unwrap();
        assert_eq!((back, status), (after, 137));
    }

    #[test]
    fn the_cleanup_refuses_what_the_waiter_never_sends() {
        assert!(parse_cleanup_args(&["--exit-status=0".into()]).is_err());
        assert!(parse_cleanup_args(&["--after-exit".into()]).is_err());
        assert!(
            parse_cleanup_args(&["--after-exit".into(), "{".into(), "--exit-status=0".into()])
                .is_err()
        );
        assert!(parse_cleanup_args(&["--exit-status=x".into()]).is_err());
    }

    #[test]
    fn copies_and_foreign_layouts_are_not_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join("pods/run/u");
        std::fs::create_dir_all(&pod).unwrap();
        let err = Handoff::prepare(&pod).err().unwrap().to_string();
        assert!(err.contains("copy"), "{err}");
        std::fs::write(pod.join(OVERLAY_PREPARED), "").unwrap();
        std::fs::write(pod.join(STAGE1_TREE_ID), "../../etc\n").unwrap();
        let err = Handoff::prepare(&pod).err().unwrap().to_string();
        assert!(err.contains("unexpected stage1 tree id"), "{err}");
        let elsewhere = dir.path().join("pods/prepared/u");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join(OVERLAY_PREPARED), "").unwrap();
        std::fs::write(elsewhere.join(STAGE1_TREE_ID), "deps-sha512-ab\n").unwrap();
        let err = Handoff::prepare(&elsewhere).err().unwrap().to_string();
        assert!(err.contains("<data dir>/pods/run/<uuid>"), "{err}");
    }
}
