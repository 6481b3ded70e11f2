//! Writing archive members into a target directory without ever leaving it.
//!
//! Every operation is relative to a directory fd. Parents are opened with `openat2` and
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so a symlink anywhere in a member's parent path is
//! an error, never followed; the final component is created with `O_EXCL`/`O_NOFOLLOW`,
//! `mkdirat`, `symlinkat`, `linkat` (without `AT_SYMLINK_FOLLOW`; also to name a regular file
//! made ahead, see the `spares` module) or `mknodat`, none of which follow a symlink at that
//! name. Metadata goes through the opened fd or `*at` calls with `AT_SYMLINK_NOFOLLOW`.
//!
//! Ordering rules: a regular file's content is written before its owner, then its mode (chown
//! clears set-id bits), then xattrs, then times. Directory owners, modes and times are applied
//! in `finish`, deepest (latest) first, because creating entries changes a directory's mtime and
//! a read-only directory mode would stop later entries.
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
    XattrFlags,
};
use rustix::io::Errno;

use super::spares::Spares;
use super::sparse::{copy_skipping_zeros, CopyError, SparseMap};
use crate::AciError;

/// Owner, permission bits and modification time of a member, from its tar header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

/// How the content of a regular file arrives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Content<'a> {
    /// Exactly this many bytes, written as they come.
    Plain(u64),
    /// A GNU sparse file of this apparent size whose holes the tar crate expands to zeros.
    Expanded(u64),
    /// The packed data of a PAX sparse file, placed by its map.
    Packed(&'a SparseMap),
}

struct DirMeta {
    rel: Vec<u8>,
    meta: Meta,
}

/// Extraction state for one archive.
pub(crate) struct Extractor {
    root: Rc<OwnedFd>,
    /// The last parent directory opened, reused while members stay in the same directory.
    cache: Option<(Vec<u8>, Rc<OwnedFd>)>,
    overwrite: bool,
    as_root: bool,
    buf: Vec<u8>,
    dirs: Vec<DirMeta>,
    dir_index: HashMap<Vec<u8>, usize>,
    /// Regular files created so far, and unnamed ones made ahead once there were many (see
    /// the `spares` module).
    files: usize,
    spares: Option<Spares>,
}

/// Regular files an image must have before the extractor has unnamed files made ahead: small
/// images are not worth a thread.
const SPARES_AFTER: usize = 64;

fn err(entry: &str, op: &'static str, e: impl Into<io::Error>) -> AciError {
    AciError::Extract {
        entry: entry.to_string(),
        op,
        source: e.into(),
    }
}

/// Splits a relative path into its parent and final component.
fn split(rel: &[u8]) -> (&[u8], &OsStr) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], OsStr::from_bytes(&rel[i + 1..])),
        None => (&[], OsStr::from_bytes(rel)),
    }
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn walk_error(entry: &str, e: Errno) -> AciError {
    let entry = entry.to_string();
    match e {
        Errno::LOOP => AciError::ThroughSymlink { entry },
        Errno::NOTDIR => AciError::ParentNotDir { entry },
        Errno::XDEV => AciError::UnsafePath { entry },
        other => AciError::Extract {
            entry,
            op: "open parent directory",
            source: other.into(),
        },
    }
}

const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

impl Extractor {
    pub(crate) fn new(target: &Path, overwrite: bool) -> Result<Extractor, AciError> {
        let root = rfs::open(
            target,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| AciError::Target {
            path: target.display().to_string(),
            source: e.into(),
        })?;
        Ok(Extractor {
            root: Rc::new(root),
            cache: None,
            overwrite,
            as_root: rustix::process::geteuid().is_root(),
            buf: vec![0; super::BUF_SIZE],
            dirs: Vec::new(),
            dir_index: HashMap::new(),
            files: 0,
            spares: None,
        })
    }

    /// Opens the parent directory `rel` (relative to the target) without following symlinks,
    /// creating missing directories (mode 0755) when `create` is set.
    fn parent(&mut self, entry: &str, rel: &[u8], create: bool) -> Result<Rc<OwnedFd>, AciError> {
        if rel.is_empty() {
            return Ok(self.root.clone());
        }
        if let Some((path, fd)) = &self.cache {
            if path == rel {
                return Ok(fd.clone());
            }
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = match rfs::openat2(&*self.root, rel, flags, Mode::empty(), BENEATH) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => self.create_parents(entry, rel)?,
            Err(e) => return Err(walk_error(entry, e)),
        };
        let fd = Rc::new(fd);
        self.cache = Some((rel.to_vec(), fd.clone()));
        Ok(fd)
    }

    /// Walks `rel` one component at a time, creating what is missing.
    fn create_parents(&mut self, entry: &str, rel: &[u8]) -> Result<OwnedFd, AciError> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut cur: Option<OwnedFd> = None;
        for comp in rel.split(|&b| b == b'/') {
            let name = OsStr::from_bytes(comp);
            let dir = cur.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            let next = match rfs::openat2(dir, name, flags, Mode::empty(), BENEATH) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(err(entry, "create parent directory", e)),
                    }
                    let ro = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
                    let fd = rfs::openat2(dir, name, ro, Mode::empty(), BENEATH)
                        .map_err(|e| walk_error(entry, e))?;
                    // mkdirat's mode is subject to the umask; implicit parents are 0755.
                    rfs::fchmod(&fd, Mode::from_raw_mode(0o755))
                        .map_err(|e| err(entry, "chmod parent directory", e))?;
                    fd
                }
                Err(e) => return Err(walk_error(entry, e)),
            };
            cur = Some(next);
        }
        cur.ok_or_else(|| err(entry, "open parent directory", Errno::INVAL))
    }

    /// Makes room for a new member at `name`: nothing if free, an error unless overwriting,
    /// otherwise the old member (a whole tree for a directory) is removed.
    fn clear(&mut self, entry: &str, dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), AciError> {
        if !self.overwrite {
            return Err(AciError::Exists {
                entry: entry.to_string(),
            });
        }
        // A removed directory may be (an ancestor of) the cached parent.
        self.cache = None;
        crate::rootfs::remove_at(dir, name).map_err(|e| err(entry, "remove existing entry", e))
    }

    /// A regular file: `data` is streamed in as `content` describes it.
    pub(crate) fn file(
        &mut self,
        entry: &str,
        rel: &[u8],
        meta: &Meta,
        data: &mut dyn Read,
        content: Content<'_>,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), AciError> {
        let (parent, name) = split(rel);
        let dir = self.parent(entry, parent, true)?;
        let fd = match self.name_spare(entry, dir.as_fd(), name)? {
            Some(fd) => fd,
            None => self.create_file(entry, dir.as_fd(), name)?,
        };
        let mut file = File::from(fd);
        match content {
            Content::Plain(size) => self.write_plain(entry, &mut file, data, size)?,
            Content::Expanded(size) => {
                let map = SparseMap {
                    size,
                    segments: vec![(0, size)],
                };
                self.write_sparse(entry, &mut file, data, &map)?
            }
            Content::Packed(map) => self.write_sparse(entry, &mut file, data, map)?,
        }
        if self.as_root {
            rfs::fchown(
                &file,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| err(entry, "chown file", e))?;
        }
        rfs::fchmod(&file, Mode::from_raw_mode(meta.mode & 0o7777))
            .map_err(|e| err(entry, "chmod file", e))?;
        if self.as_root {
            for (key, value) in xattrs {
                // Best effort, as in rkt: the target filesystem may not support xattrs, and a
                // missing `security.capability` only leaves the file with fewer privileges.
                rfs::fsetxattr(&file, key.as_slice(), value, XattrFlags::empty()).ok();
            }
        }
        rfs::futimens(&file, &times(meta.mtime)).map_err(|e| err(entry, "set file times", e))
    }

    /// Creates the regular file `name` in `dir`, owner-only until its mode is applied.
    fn create_file(
        &mut self,
        entry: &str,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> Result<OwnedFd, AciError> {
        self.files += 1;
        if self.files == SPARES_AFTER && self.as_root {
            self.spares = Spares::start(&self.root);
        }
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(0o600);
        match rfs::openat(dir, name, flags, mode) {
            Err(Errno::EXIST) => {
                self.clear(entry, dir, name)?;
                rfs::openat(dir, name, flags, mode)
            }
            other => other,
        }
        .map_err(|e| err(entry, "create file", e))
    }

    /// Names an unnamed file made ahead `name` in `dir`, if one is ready. Like `O_EXCL`,
    /// `linkat` never follows or replaces what is at `name`. `None` when there is no such file
    /// or it cannot be named here; the caller then creates the file itself.
    fn name_spare(
        &mut self,
        entry: &str,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> Result<Option<OwnedFd>, AciError> {
        let Some(fd) = self.spares.as_ref().and_then(Spares::take) else {
            return Ok(None);
        };
        let link = |dir| rfs::linkat(&fd, "", dir, name, AtFlags::EMPTY_PATH);
        match link(dir) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                self.clear(entry, dir, name)?;
                link(dir).map_err(|e| err(entry, "create file", e))?;
            }
            // Another filesystem mounted inside the target: this file only.
            Err(Errno::XDEV) => return Ok(None),
            // Not allowed to name a file by its descriptor (ENOENT without
            // CAP_DAC_READ_SEARCH), or whatever else the kernel refuses: the extractor creates
            // its files itself from here on, and reports any error that creating gives.
            Err(_) => {
                self.spares = None;
                return Ok(None);
            }
        }
        self.files += 1;
        Ok(Some(fd))
    }

    /// Writes `data` as it comes; it must hold exactly `size` bytes.
    fn write_plain(
        &mut self,
        entry: &str,
        file: &mut File,
        data: &mut dyn Read,
        size: u64,
    ) -> Result<(), AciError> {
        let mut written = 0u64;
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(AciError::Read(e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| err(entry, "write file", e))?;
            written += n as u64;
        }
        if written != size {
            return Err(AciError::Truncated {
                entry: entry.to_string(),
                expected: size,
                got: written,
            });
        }
        Ok(())
    }

    /// Writes each segment of `map` at its offset from `data`, seeking over zeros, then sets
    /// the apparent size: holes are never written out.
    fn write_sparse(
        &mut self,
        entry: &str,
        file: &mut File,
        data: &mut dyn Read,
        map: &SparseMap,
    ) -> Result<(), AciError> {
        let expected: u64 = map.segments.iter().map(|&(_, len)| len).sum();
        let mut got = 0u64;
        for &(offset, len) in &map.segments {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| err(entry, "seek in file", e))?;
            let n = copy_skipping_zeros(data, file, len, &mut self.buf).map_err(|e| match e {
                CopyError::Read(e) => AciError::Read(e),
                CopyError::Write(e) => err(entry, "write file", e),
            })?;
            got += n;
            if n != len {
                return Err(AciError::Truncated {
                    entry: entry.to_string(),
                    expected,
                    got,
                });
            }
        }
        file.set_len(map.size)
            .map_err(|e| err(entry, "set file size", e))
    }

    /// A directory; an existing directory is kept and gets the new metadata. `rel` may be empty
    /// (the target itself, for the `rootfs` entry when extracting only the rootfs).
    pub(crate) fn dir(&mut self, entry: &str, rel: &[u8], meta: &Meta) -> Result<(), AciError> {
        if !rel.is_empty() {
            let (parent, name) = split(rel);
            let dir = self.parent(entry, parent, true)?;
            // Owner-only until `finish` applies the real mode.
            let mode = Mode::from_raw_mode(0o700);
            match rfs::mkdirat(&*dir, name, mode) {
                Ok(()) => {}
                Err(Errno::EXIST) => {
                    let st = rfs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| err(entry, "stat existing entry", e))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                        // Replaced, not followed: a symlink-to-dir is removed first.
                        self.clear(entry, dir.as_fd(), name)?;
                        rfs::mkdirat(&*dir, name, mode)
                            .map_err(|e| err(entry, "create directory", e))?;
                    }
                }
                Err(e) => return Err(err(entry, "create directory", e)),
            }
        }
        let meta = *meta;
        match self.dir_index.get(rel) {
            Some(&i) => self.dirs[i].meta = meta,
            None => {
                self.dir_index.insert(rel.to_vec(), self.dirs.len());
                self.dirs.push(DirMeta {
                    rel: rel.to_vec(),
                    meta,
                });
            }
        }
        Ok(())
    }

    /// Owner and times of a member created by name (symlinks, device nodes).
    fn name_meta(
        &self,
        entry: &str,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
    ) -> Result<(), AciError> {
        if self.as_root {
            let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
            rfs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| err(entry, "chown", e))?;
        }
        rfs::utimensat(dir, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| err(entry, "set times", e))
    }

    /// A symlink (its target was checked by the caller; it is stored, never followed here).
    pub(crate) fn symlink(
        &mut self,
        entry: &str,
        rel: &[u8],
        target: &[u8],
        meta: &Meta,
    ) -> Result<(), AciError> {
        let (parent, name) = split(rel);
        let dir = self.parent(entry, parent, true)?;
        let target = OsStr::from_bytes(target);
        match rfs::symlinkat(target, &*dir, name) {
            Err(Errno::EXIST) => {
                self.clear(entry, dir.as_fd(), name)?;
                rfs::symlinkat(target, &*dir, name)
            }
            other => other,
        }
        .map_err(|e| err(entry, "create symlink", e))?;
        self.name_meta(entry, dir.as_fd(), name, meta)
    }

    /// Whether `rel` exists as a regular file (reached without symlinks).
    pub(crate) fn is_regular(&mut self, entry: &str, rel: &[u8]) -> bool {
        let (parent, name) = split(rel);
        let Ok(dir) = self.parent(entry, parent, false) else {
            return false;
        };
        rfs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
    }

    /// A hard link to `target`, a regular file already in the tree (checked by the caller).
    pub(crate) fn hardlink(
        &mut self,
        entry: &str,
        rel: &[u8],
        target: &[u8],
    ) -> Result<(), AciError> {
        let bad = |problem| AciError::BadHardLink {
            entry: entry.to_string(),
            target: String::from_utf8_lossy(target).into_owned(),
            problem,
        };
        if !self.is_regular(entry, target) {
            return Err(bad("is not an existing regular file"));
        }
        let (tparent, tname) = split(target);
        let tdir = self.parent(entry, tparent, false)?;
        let (parent, name) = split(rel);
        let dir = self.parent(entry, parent, true)?;
        match rfs::linkat(&*tdir, tname, &*dir, name, AtFlags::empty()) {
            Err(Errno::EXIST) => {
                self.clear(entry, dir.as_fd(), name)?;
                rfs::linkat(&*tdir, tname, &*dir, name, AtFlags::empty())
            }
            other => other,
        }
        .map_err(|e| match e {
            Errno::NOENT => bad("is not an existing regular file"),
            e => err(entry, "create hard link", e),
        })
    }

    /// A character or block device or a fifo. Devices need root (`CAP_MKNOD`): otherwise, or
    /// when the kernel refuses (user namespaces), they are skipped without error.
    pub(crate) fn device(
        &mut self,
        entry: &str,
        rel: &[u8],
        kind: FileType,
        dev: (u32, u32),
        meta: &Meta,
    ) -> Result<(), AciError> {
        let is_fifo = kind == FileType::Fifo;
        if !is_fifo && !self.as_root {
            return Ok(());
        }
        let (parent, name) = split(rel);
        let dir = self.parent(entry, parent, true)?;
        let mode = Mode::from_raw_mode(meta.mode & 0o7777);
        let rdev = rfs::makedev(dev.0, dev.1);
        let created = match rfs::mknodat(&*dir, name, kind, mode, rdev) {
            Err(Errno::EXIST) => {
                self.clear(entry, dir.as_fd(), name)?;
                rfs::mknodat(&*dir, name, kind, mode, rdev)
            }
            other => other,
        };
        match created {
            Ok(()) => {}
            Err(Errno::PERM) if !is_fifo => return Ok(()),
            Err(e) => return Err(err(entry, "create device node", e)),
        }
        self.name_meta(entry, dir.as_fd(), name, meta)?;
        // mknodat's mode is subject to the umask. The node was just created through a directory
        // fd reached without symlinks, so this name is that node.
        rfs::chmodat(&*dir, name, mode, AtFlags::empty())
            .map_err(|e| err(entry, "chmod device node", e))
    }

    /// Applies directory owners, modes and times, latest first; directories replaced by later
    /// members are skipped.
    pub(crate) fn finish(self) -> Result<(), AciError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        for d in self.dirs.iter().rev() {
            let entry = String::from_utf8_lossy(&d.rel);
            let path: &[u8] = if d.rel.is_empty() { b"." } else { &d.rel };
            let fd = match rfs::openat2(&*self.root, path, flags, Mode::empty(), BENEATH) {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(err(&entry, "open directory", e)),
            };
            if self.as_root {
                let (uid, gid) = (Uid::from_raw(d.meta.uid), Gid::from_raw(d.meta.gid));
                rfs::fchown(&fd, Some(uid), Some(gid))
                    .map_err(|e| err(&entry, "chown directory", e))?;
            }
            rfs::fchmod(&fd, Mode::from_raw_mode(d.meta.mode & 0o7777))
                .map_err(|e| err(&entry, "chmod directory", e))?;
            rfs::futimens(&fd, &times(d.meta.mtime))
                .map_err(|e| err(&entry, "set directory times", e))?;
        }
        Ok(())
    }
}
