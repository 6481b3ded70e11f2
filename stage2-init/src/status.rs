//! The files stage0 reads while and after the pod runs: `<rkt-dir>/status/<app>` and
//! `<rkt-dir>/supervisor-status` (docs/stage-contract.md, "Exit policy"). Both are replaced atomically, by
//! a rename in the same directory, so a reader never sees a partial value.
//!
//! Temporary names start with `.`, which no AC Name (hence no app name) does.

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

/// Records an app's exit status: decimal, no trailing newline.
pub fn write_status(rkt_dir: &Path, app: &str, status: i32) -> Result<(), Error> {
    let dir = rkt_dir.join(STATUS_DIR);
    let tmp = TempPath(dir.join(format!(".{app}.tmp")));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp.0)
        .map_err(failed("create", &tmp.0))?;
    file.write_all(status.to_string().as_bytes())
        .and_then(|()| file.sync_all())
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
