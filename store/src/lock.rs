//! Advisory `flock(2)` locks. The kernel drops them when the process dies, which is what makes a
//! killed import or render detectable (its work directory is no longer locked).
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::{flock, FlockOperation, OFlags};

use crate::{Result, StoreError};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Blocks until the lock is held.
    pub fn acquire(path: &Path, exclusive: bool) -> Result<StoreLock> {
        let file = open_lock_file(path)?;
        let op = if exclusive {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::LockShared
        };
        retry_eintr(|| flock(&file, op)).map_err(|e| StoreError::io("lock", path, e.into()))?;
        Ok(StoreLock { _file: file })
    }

    /// Takes an exclusive lock without waiting; `None` when someone else holds it.
    pub fn try_exclusive(path: &Path) -> Result<Option<StoreLock>> {
        let file = open_lock_file(path)?;
        match retry_eintr(|| flock(&file, FlockOperation::NonBlockingLockExclusive)) {
            Ok(()) => Ok(Some(StoreLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(StoreError::io("lock", path, e.into())),
        }
    }
}

/// Opens (creating) a lock file, never through a symlink.
pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| StoreError::io("open lock file", path, e))
}

fn retry_eintr<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    loop {
        match f() {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other,
        }
    }
}
