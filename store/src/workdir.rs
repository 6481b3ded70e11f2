//! Work directories under `cas/tmp`, where imports and renders build their results before
//! renaming them into place. Each holds an exclusive lock on `<name>.lock` for its whole life,
//! so a directory whose lock is free belongs to a process that died mid-way and is removed.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::atomic::remove_tree;
use crate::{Result, Store, StoreError, StoreLock};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) struct WorkDir {
    path: PathBuf,
    lock_path: PathBuf,
    _lock: StoreLock,
}

impl WorkDir {
    pub(crate) fn create(store: &Store, purpose: &str) -> Result<WorkDir> {
        let tmp = store.tmp_dir();
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let name = format!(
                "{purpose}-{}-{}-{nanos}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let lock_path = tmp.join(format!("{name}.lock"));
            // The lock exists before the directory, so a cleaner never sees a live directory
            // without its lock. A cleaner may delete the lock file between its creation and
            // our lock: then this name is abandoned for a new one.
            let lock = StoreLock::acquire(&lock_path, true)?;
            if !lock.is_at(&lock_path)? {
                continue;
            }
            let path = tmp.join(name);
            std::fs::create_dir(&path).map_err(|e| StoreError::io("create directory", &path, e))?;
            return Ok(WorkDir {
                path,
                lock_path,
                _lock: lock,
            });
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Whatever was not renamed into the store is garbage; failures are retried by the next
        // cleanup since the lock file stays behind.
        if remove_tree(&self.path).is_ok() {
            let _ = std::fs::remove_file(&self.lock_path);
        }
    }
}

/// Removes work directories left behind by killed processes: those whose lock file is free,
/// and those without a lock file (a live work directory always has its lock file, created and
/// locked before it, and deleted after it). A failure to remove one entry is not fatal: the
/// next cleanup tries again.
pub(crate) fn clean_stale(store: &Store) -> Result<()> {
    let tmp = store.tmp_dir();
    let entries = std::fs::read_dir(&tmp).map_err(|e| StoreError::io("read directory", &tmp, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (work, lock) = match name.strip_suffix(".lock") {
            Some(work) => (tmp.join(work), path.clone()),
            None => (path.clone(), tmp.join(format!("{name}.lock"))),
        };
        if lock.symlink_metadata().is_ok() {
            // Removed while we hold the lock, so that the owner of a live one is never
            // robbed; the lock file goes last.
            let Ok(Some(held)) = StoreLock::try_existing(&lock) else {
                continue;
            };
            if remove_tree(&work).is_ok() {
                let _ = held.unlink(&lock);
            }
        } else if is_dir(&work) {
            let _ = remove_tree(&work);
        }
    }
    Ok(())
}

fn is_dir(path: &Path) -> bool {
    path.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false)
}

impl Store {
    /// Removes what killed imports and renders left in `cas/tmp`.
    pub fn clean_stale_work(&self) -> Result<()> {
        clean_stale(self)
    }
}
