//! Removing a directory tree whatever its depth, with a bounded number of open descriptors.
//!
//! `std::fs::remove_dir_all` holds one descriptor per level, so a pod that built a tree
//! 200,000 levels deep in its root could never be removed ("Too many open files") and was never
//! reclaimed. Here at most [`MAX_OPEN_LEVELS`] directories of the tree are open at once: a
//! non-empty directory met at that depth is renamed to the top of the tree being removed (the
//! same filesystem: the walk never leaves the top's mount) and removed from there later. A
//! directory is moved at most once per [`MAX_OPEN_LEVELS`] levels of depth, so the work stays
//! proportional to the number of entries.
//!
//! Symlinks are never followed: directories are opened with `O_NOFOLLOW` relative to their
//! parent's descriptor and everything else is unlinked, never resolved. Another mount met inside
//! the tree (or the tree itself being a mount point) is an error, so nothing on another
//! filesystem is ever deleted: unmount it first.
use std::ffi::{OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, RawDir, RenameFlags, SeekFrom, Statx, StatxFlags,
};
use rustix::io::Errno;

/// Directories of the tree open at once (besides the parent of the top).
pub(crate) const MAX_OPEN_LEVELS: usize = 16;

/// Times a directory is listed again after its listing was worked through and it still was not
/// empty (something else is adding entries); then the removal gives up.
const MAX_RELISTS: u8 = 3;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Removes `path` and, if it is a directory, everything below it, without following symlinks
/// (a symlink at `path` is removed itself), without entering other mounts, and holding a small,
/// fixed number of descriptors however deep the tree is. A missing `path` is `Ok`.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to remove {}: it names no entry", path.display()),
        ));
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let parent = match rfs::open(parent, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    remove_at(parent.as_fd(), name)
}

/// [`remove_tree`] of the entry `name` in the directory `parent`.
pub(crate) fn remove_at(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let top = match rfs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        // Not a directory, or a symlink (to anything): the entry itself goes.
        Err(Errno::NOTDIR | Errno::LOOP) => return unlink(parent, name, AtFlags::empty()),
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mount = mount_of(&rfs::statx(&top, "", AtFlags::EMPTY_PATH, IDENTITY)?);
    if mount != mount_of(&rfs::statx(parent, "", AtFlags::EMPTY_PATH, IDENTITY)?) {
        return Err(mount_point(name));
    }
    let mut remover = Remover {
        stack: Vec::with_capacity(MAX_OPEN_LEVELS),
        mount,
        buf: vec![MaybeUninit::uninit(); 64 * 1024],
        moved: 0,
    };
    let pending = remover.list(top.as_fd())?;
    remover.stack.push(Level {
        fd: top,
        name: OsString::new(),
        pending,
        relists: 0,
    });
    remover.run()?;
    drop(remover);
    unlink(parent, name, AtFlags::REMOVEDIR)
}

const IDENTITY: StatxFlags = StatxFlags::TYPE.union(StatxFlags::MNT_ID);

/// Which mount an entry is on: the mount id when the kernel reports it (5.8+), else the device.
fn mount_of(st: &Statx) -> (bool, u64) {
    if st.stx_mask & StatxFlags::MNT_ID.bits() != 0 {
        (true, st.stx_mnt_id)
    } else {
        (
            false,
            (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
        )
    }
}

fn mount_point(name: &OsStr) -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!(
            "{} is a mount point; unmount it before removing the tree",
            name.to_string_lossy()
        ),
    )
}

/// `unlinkat`, where an entry that is already gone counts as removed.
fn unlink(dir: BorrowedFd<'_>, name: &OsStr, flags: AtFlags) -> io::Result<()> {
    match rfs::unlinkat(dir, name, flags) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// One open directory of the walk.
struct Level {
    fd: OwnedFd,
    /// Its name in the level above (empty for the top).
    name: OsString,
    /// Entries still to remove.
    pending: Vec<(OsString, FileType)>,
    relists: u8,
}

struct Remover {
    /// The top of the tree first; never longer than [`MAX_OPEN_LEVELS`].
    stack: Vec<Level>,
    mount: (bool, u64),
    buf: Vec<MaybeUninit<u8>>,
    /// Directories moved to the top so far (names them uniquely).
    moved: u64,
}

impl Remover {
    /// Every entry of `dir` but `.` and `..`, read from the start.
    fn list(&mut self, dir: BorrowedFd<'_>) -> io::Result<Vec<(OsString, FileType)>> {
        rfs::seek(dir, SeekFrom::Start(0))?;
        let mut out = Vec::new();
        let mut entries = RawDir::new(dir, &mut self.buf);
        while let Some(entry) = entries.next() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push((OsStr::from_bytes(name).to_os_string(), entry.file_type()));
            }
        }
        Ok(out)
    }

    fn run(&mut self) -> io::Result<()> {
        loop {
            let level = self
                .stack
                .last_mut()
                .expect("bug: the top stays on the stack");
            if let Some((name, kind)) = level.pending.pop() {
                self.remove_entry(&name, kind)?;
                continue;
            }
            // Everything listed is gone; the directory itself goes unless entries appeared
            // meanwhile (then they are listed again, a few times at most).
            let level = self.stack.pop().expect("bug: checked above");
            let removed = match self.stack.last() {
                Some(parent) => match rfs::unlinkat(&parent.fd, &level.name, AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => true,
                    Err(Errno::NOTEMPTY | Errno::EXIST) => false,
                    Err(e) => return Err(e.into()),
                },
                // The top: its parent removes it once it is empty.
                None => self.list(level.fd.as_fd())?.is_empty(),
            };
            if removed {
                if self.stack.is_empty() {
                    return Ok(());
                }
                continue;
            }
            if level.relists >= MAX_RELISTS {
                return Err(Errno::NOTEMPTY.into());
            }
            let pending = self.list(level.fd.as_fd())?;
            self.stack.push(Level {
                pending,
                relists: level.relists + 1,
                ..level
            });
        }
    }

    /// Removes one entry of the innermost open directory: unlinks a non-directory, removes an
    /// empty directory, and opens (or, at the descriptor budget, moves to the top) any other.
    fn remove_entry(&mut self, name: &OsStr, kind: FileType) -> io::Result<()> {
        let depth = self.stack.len();
        let cur = self.stack[depth - 1].fd.as_fd();
        if !matches!(kind, FileType::Directory | FileType::Unknown) {
            match rfs::unlinkat(cur, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => return Ok(()),
                // Replaced by a directory since it was listed: handled below.
                Err(Errno::ISDIR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let st = match rfs::statx(cur, name, AtFlags::SYMLINK_NOFOLLOW, IDENTITY) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if FileType::from_raw_mode(u32::from(st.stx_mode)) != FileType::Directory {
            return unlink(cur, name, AtFlags::empty());
        }
        if mount_of(&st) != self.mount {
            return Err(mount_point(name));
        }
        match rfs::unlinkat(cur, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => return Ok(()),
            Err(Errno::NOTEMPTY | Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        if depth < MAX_OPEN_LEVELS {
            let fd = rfs::openat(cur, name, DIR_FLAGS, Mode::empty())?;
            // The name may have been swapped for a mount since the statx above.
            if mount_of(&rfs::statx(&fd, "", AtFlags::EMPTY_PATH, IDENTITY)?) != self.mount {
                return Err(mount_point(name));
            }
            let pending = self.list(fd.as_fd())?;
            self.stack.push(Level {
                fd,
                name: name.to_os_string(),
                pending,
                relists: 0,
            });
            return Ok(());
        }
        // At the descriptor budget: move the subtree up to the top (a rename within one mount)
        // and come back to it once the levels in between are gone.
        loop {
            self.moved += 1;
            let new_name = OsString::from(format!(".rkt-remove-{}", self.moved));
            let top = self.stack[0].fd.as_fd();
            let cur = self.stack[depth - 1].fd.as_fd();
            match rfs::renameat_with(cur, name, top, &new_name, RenameFlags::NOREPLACE) {
                Ok(()) => {
                    self.stack[0].pending.push((new_name, FileType::Directory));
                    return Ok(());
                }
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests;
