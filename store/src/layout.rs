//! Creating the store's directories so that a symlink planted in rkt's data directory is
//! refused instead of followed: following one would chmod its target and move the store (and
//! everything rkt later deletes in it) somewhere else.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::{Result, StoreError};

/// Opens the directory `name` in `parent` (whose path is `parent_path`), creating it with
/// `mode` if missing. A symlink (to anything) or a non-directory at `name` is an error, never
/// followed. With `exact`, the mode is set through the opened descriptor when it differs.
pub fn real_dir(
    parent: BorrowedFd<'_>,
    parent_path: &Path,
    name: &str,
    mode: u32,
    exact: bool,
) -> Result<OwnedFd> {
    let path = parent_path.join(name);
    match rfs::mkdirat(parent, name, Mode::from_raw_mode(mode)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(StoreError::io("create directory", &path, e.into())),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rfs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::LOOP) => return Err(StoreError::Symlink(path)),
        Err(Errno::NOTDIR) => {
            // O_NOFOLLOW|O_DIRECTORY on a symlink may also say ENOTDIR: tell the two apart.
            let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| StoreError::io("stat", &path, e.into()))?;
            return Err(match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => StoreError::Symlink(path),
                _ => StoreError::NotDirectory(path),
            });
        }
        Err(e) => return Err(StoreError::io("open directory", &path, e.into())),
    };
    if exact {
        let st = rfs::fstat(&fd).map_err(|e| StoreError::io("stat", &path, e.into()))?;
        if st.st_mode & 0o7777 != mode {
            rfs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(|e| StoreError::io("chmod", &path, e.into()))?;
        }
    }
    Ok(fd)
}

/// Opens rkt's data directory itself, creating it (and its parents) if missing. It may be a
/// symlink: stage0 canonicalizes `--dir`, and the user chose it.
pub(crate) fn open_data_dir(path: &Path) -> Result<OwnedFd> {
    std::fs::create_dir_all(path).map_err(|e| StoreError::io("create directory", path, e))?;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rfs::open(path, flags, Mode::empty()).map_err(|e| StoreError::io("open", path, e.into()))
}

/// Creates the store's layout under `data_dir`: `cas` (mode 0700: images hold device nodes and
/// setuid files, only root may reach into them) and its subdirectories.
pub(crate) fn create(data_dir: &Path, cas_name: &str, subdirs: &[&str]) -> Result<()> {
    let data = open_data_dir(data_dir)?;
    let cas_path = data_dir.join(cas_name);
    let cas = real_dir(data.as_fd(), data_dir, cas_name, 0o700, true)?;
    for sub in subdirs {
        real_dir(cas.as_fd(), &cas_path, sub, 0o700, false)?;
    }
    Ok(())
}
