//! Advisory `flock(2)` locks. The kernel drops them when the process dies, which is what makes a
//! killed import or render detectable (its work directory is no longer locked).
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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

impl StoreLock {
    /// Takes an exclusive lock on a lock file that [`StoreLock::remove_unused`] may delete:
    /// the lock only counts once the file locked is still the one at `path` (otherwise a
    /// remover unlinked it between our open and our lock, and we try again on a new file).
    pub(crate) fn acquire_removable(path: &Path) -> Result<StoreLock> {
        loop {
            let lock = StoreLock::acquire(path, true)?;
            if lock.is_at(path)? {
                return Ok(lock);
            }
        }
    }

    /// Whether the file this lock holds is the one at `path`.
    pub(crate) fn is_at(&self, path: &Path) -> Result<bool> {
        let held = self
            ._file
            .metadata()
            .map_err(|e| StoreError::io("stat", path, e))?;
        match std::fs::symlink_metadata(path) {
            Ok(m) => Ok(m.dev() == held.dev() && m.ino() == held.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("stat", path, e)),
        }
    }

    /// Takes an exclusive lock on the existing lock file at `path` without waiting and without
    /// creating it: `None` when it is missing or held by someone else.
    pub(crate) fn try_existing(path: &Path) -> Result<Option<StoreLock>> {
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("open lock file", path, e)),
        };
        match retry_eintr(|| flock(&file, FlockOperation::NonBlockingLockExclusive)) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
            Err(e) => return Err(StoreError::io("lock", path, e.into())),
        }
        let lock = StoreLock { _file: file };
        // Already unlinked (and perhaps recreated by someone else): not this file any more.
        Ok(lock.is_at(path)?.then_some(lock))
    }

    /// Deletes the lock file at `path`, which this lock holds: unlinked while locked, so that
    /// a process taking it with [`StoreLock::acquire_removable`] either finds it gone or sees
    /// that its lock was on a deleted file.
    pub(crate) fn unlink(self, path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", path, e)),
        }
    }

    /// Deletes the lock file at `path` unless a process holds it.
    pub(crate) fn remove_unused(path: &Path) -> Result<()> {
        match StoreLock::try_existing(path)? {
            Some(lock) => lock.unlink(path),
            None => Ok(()),
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
