//! The files stage0 reads while and after the pod runs: `<rkt-dir>/status/<app>` and
//! `<rkt-dir>/supervisor-status` (docs/stage-contract.md, "Exit policy"). Both are replaced atomically, by
//! a rename in the same directory, so a reader never sees a partial value.
//!
//! Temporary names start with `.`, which no AC Name (hence no app name) does.
//!
//! Each app's temporary file is created at its largest size before any app starts
//! ([`reserve_status`]). Recording a status then only overwrites blocks the file already owns,
//! shrinks it and renames it: it needs no free space, so a pod that filled its disk still
//! records how its apps exited.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::contract::{STATUS_DIR, SUPERVISOR_READY, SUPERVISOR_STATUS};
use crate::sys::Error;

/// Creates `<rkt-dir>/status` unless stage1 already did.
pub fn create_status_dir(rkt_dir: &Path) -> Result<(), Error> {
    let dir = rkt_dir.join(STATUS_DIR);
    match fs::create_dir(&dir) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => Err(failed("mkdir", &dir)(err)),
        _ => Ok(()),
    }
}

/// The longest status: an `i32` in decimal.
const MAX_STATUS_LEN: usize = "-2147483648".len();

fn temp_status_path(rkt_dir: &Path, app: &str) -> PathBuf {
    rkt_dir.join(STATUS_DIR).join(format!(".{app}.tmp"))
}

/// Creates the app's temporary status file at its largest size, so that [`write_status`]
/// never needs free space: the write itself allocates (or, with delayed allocation, reserves)
/// the blocks, which is all that matters here. No fsync: it would cost every pod start a disk
/// flush, and a status only has to outlive the pod, not the host.
pub fn reserve_status(rkt_dir: &Path, app: &str) -> Result<(), Error> {
    let path = temp_status_path(rkt_dir, app);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&path)
        .map_err(failed("reserve", &path))?;
    file.write_all(&[b' '; MAX_STATUS_LEN])
        .map_err(failed("reserve", &path))
}

/// Records an app's exit status: decimal, no trailing newline. Uses the reserved file when
/// there is one.
pub fn write_status(rkt_dir: &Path, app: &str, status: i32) -> Result<(), Error> {
    let dir = rkt_dir.join(STATUS_DIR);
    let tmp = TempPath(temp_status_path(rkt_dir, app));
    // No O_TRUNC: the reserved blocks are overwritten in place, then the rest is cut off.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&tmp.0)
        .map_err(failed("create", &tmp.0))?;
    let text = status.to_string();
    // No fsync either (rkt had none): the exit status reaches the caller without waiting for
    // the disk; the rename still makes it appear whole or not at all.
    file.write_all(text.as_bytes())
        .and_then(|()| file.set_len(text.len() as u64))
        .map_err(failed("write", &tmp.0))?;
    let dest = dir.join(app);
    fs::rename(&tmp.0, &dest).map_err(failed("rename to", &dest))?;
    tmp.disarm();
    Ok(())
}

/// Maps an I/O error to one naming the operation and the path.
fn failed<'a>(op: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |err| Error::new(format!("{op} {}", path.display()), err)
}

/// Creates `supervisor-status -> ready`, by a symlink under a temporary name renamed over it.
pub fn mark_ready(rkt_dir: &Path) -> Result<(), Error> {
    let dest = rkt_dir.join(SUPERVISOR_STATUS);
    if fs::read_link(&dest).is_ok_and(|target| target == Path::new(SUPERVISOR_READY)) {
        return Ok(()); // already ready: nothing to replace
    }
    let tmp = TempPath(rkt_dir.join(format!(".{SUPERVISOR_STATUS}.tmp")));
    let create = || symlink(SUPERVISOR_READY, &tmp.0);
    let created = match create() {
        // Left over from an earlier attempt that died before its rename.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&tmp.0).and_then(|()| create())
        }
        other => other,
    };
    created.map_err(failed("symlink", &tmp.0))?;
    fs::rename(&tmp.0, &dest).map_err(failed("rename to", &dest))?;
    tmp.disarm();
    Ok(())
}

/// Removes the temporary file on drop unless it was renamed into place.
struct TempPath(PathBuf);

impl TempPath {
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        // Best effort: the error that got us here is the one worth reporting.
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("stage2-init-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create temp dir");
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn status_is_decimal_without_newline_and_replaced_atomically() {
        let rkt = TempDir::new("status");
        create_status_dir(&rkt.0).expect("mkdir");
        create_status_dir(&rkt.0).expect("mkdir again is fine");
        write_status(&rkt.0, "web", 5).expect("write");
        write_status(&rkt.0, "web", 137).expect("overwrite");
        let dir = rkt.0.join(STATUS_DIR);
        assert_eq!(fs::read_to_string(dir.join("web")).expect("read"), "137");
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["web"], "no temporary file left");
    }

    #[test]
    fn a_reserved_status_is_written_without_new_space() {
        let rkt = TempDir::new("reserved");
        create_status_dir(&rkt.0).expect("mkdir");
        reserve_status(&rkt.0, "web").expect("reserve");
        let dir = rkt.0.join(STATUS_DIR);
        assert!(!dir.join("web").exists(), "no status before the app exits");
        assert_eq!(
            fs::metadata(dir.join(".web.tmp")).expect("reserved").len(),
            MAX_STATUS_LEN as u64
        );
        write_status(&rkt.0, "web", 3).expect("write");
        assert_eq!(fs::read_to_string(dir.join("web")).expect("read"), "3");
        write_status(&rkt.0, "web", i32::MIN).expect("longest");
        assert_eq!(
            fs::read_to_string(dir.join("web")).expect("read"),
            "-2147483648"
        );
    }

    #[test]
    fn write_status_names_the_path_on_failure() {
        let rkt = TempDir::new("missing");
        let err = write_status(&rkt.0, "web", 0).expect_err("no status dir");
        assert!(err.to_string().starts_with("create "), "{err}");
        assert!(
            err.to_string().ends_with("No such file or directory"),
            "{err}"
        );
    }

    #[test]
    fn ready_symlink_is_created_replaced_and_idempotent() {
        let rkt = TempDir::new("ready");
        let dest = rkt.0.join(SUPERVISOR_STATUS);
        symlink("starting", &dest).expect("old link");
        symlink("junk", rkt.0.join(format!(".{SUPERVISOR_STATUS}.tmp"))).expect("stale tmp");
        mark_ready(&rkt.0).expect("ready");
        mark_ready(&rkt.0).expect("ready again");
        assert_eq!(fs::read_link(&dest).expect("link"), Path::new("ready"));
        assert_eq!(
            fs::read_dir(&rkt.0).expect("list").count(),
            1,
            "no temporary link left"
        );
    }
}
