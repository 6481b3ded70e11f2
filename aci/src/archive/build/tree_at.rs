//! [`AciBuilder::add_tree_at`]: packing a directory that someone else may be changing (an
//! exited pod's root, written by its apps) without ever following a symlink out of it.
//!
//! Every entry is opened relative to its parent's descriptor with `O_NOFOLLOW`, and its
//! metadata comes from the opened descriptor, so a name swapped for a symlink between listing
//! and opening is an error, never a path into the host. Symlinks are stored as symlinks.
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat};
use tar::EntryType;

use super::{invalid, rootfs_relative, AciBuilder, Attrs};

/// Most directory levels [`AciBuilder::add_tree_at`] descends: one descriptor is open per
/// level, and no real image comes near (paths longer than PATH_MAX cannot even be opened).
pub const MAX_TREE_DEPTH: usize = 512;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// An open directory of the walk and the names still to add from it.
struct Frame {
    fd: OwnedFd,
    rel: String,
    /// Sorted, last first.
    names: Vec<OsString>,
}

fn sorted_names(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in rfs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names)
}

fn kind(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

impl<W: Write> AciBuilder<W> {
    fn attrs_of_stat(&self, st: &Stat) -> Attrs {
        Attrs {
            mode: st.st_mode & 0o7777,
            uid: if self.preserve_ownership {
                u64::from(st.st_uid)
            } else {
                0
            },
            gid: if self.preserve_ownership {
                u64::from(st.st_gid)
            } else {
                0
            },
            mtime: if self.preserve_mtime {
                st.st_mtime.max(0) as u64
            } else {
                0
            },
        }
    }

    /// Like [`AciBuilder::add_tree`] for the directory open at `dir` (any descriptor of it,
    /// `O_PATH` included), never following a symlink: each entry is opened relative to its
    /// parent with `O_NOFOLLOW` and described from the opened descriptor, symlinks are stored
    /// as symlinks, fifos and device nodes as such, sockets are skipped. An entry replaced
    /// while the walk runs is an error, never followed; so is a tree deeper than
    /// [`MAX_TREE_DEPTH`].
    pub fn add_tree_at(&mut self, dir: BorrowedFd<'_>, path_in_rootfs: &str) -> io::Result<()> {
        let rel = rootfs_relative(path_in_rootfs)?;
        let top = rfs::openat(dir, ".", DIR_FLAGS, Mode::empty())?;
        if !rel.is_empty() {
            let attrs = self.attrs_of_stat(&rfs::fstat(&top)?);
            self.dir_with(&rel, &attrs)?;
        }
        let names = sorted_names(&top)?;
        let mut stack = vec![Frame {
            fd: top,
            rel,
            names,
        }];
        while let Some(frame) = stack.last_mut() {
            let Some(name) = frame.names.pop() else {
                stack.pop();
                continue;
            };
            let Some(utf8) = name.to_str() else {
                return Err(invalid(format!(
                    "{}/{}: file name is not UTF-8",
                    frame.rel,
                    name.to_string_lossy()
                )));
            };
            let child = if frame.rel.is_empty() {
                utf8.to_string()
            } else {
                format!("{}/{utf8}", frame.rel)
            };
            let parent = frame.fd.as_fd();
            if let Some(next) = self.add_entry(parent, &name, &child)? {
                if stack.len() > MAX_TREE_DEPTH {
                    return Err(invalid(format!(
                        "{child}: directory tree deeper than {MAX_TREE_DEPTH} levels"
                    )));
                }
                stack.push(next);
            }
        }
        Ok(())
    }

    /// Adds the entry `name` of `parent` as `rel`; a directory is returned to be walked.
    fn add_entry(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        rel: &str,
    ) -> io::Result<Option<Frame>> {
        let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
        match kind(&st) {
            FileType::Directory => {
                let fd = rfs::openat(parent, name, DIR_FLAGS, Mode::empty())?;
                let attrs = self.attrs_of_stat(&rfs::fstat(&fd)?);
                self.dir_with(rel, &attrs)?;
                let names = sorted_names(&fd)?;
                Ok(Some(Frame {
                    fd,
                    rel: rel.to_string(),
                    names,
                }))
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(parent, name, Vec::new())?;
                let Ok(target) = target.into_string() else {
                    return Err(invalid(format!("{rel}: link target is not UTF-8")));
                };
                let attrs = self.attrs_of_stat(&st);
                self.symlink_with(rel, &target, &attrs)?;
                Ok(None)
            }
            FileType::RegularFile => {
                // O_NONBLOCK: if the name became a fifo since the stat, the open must not wait
                // for a writer; the type is checked again on the descriptor.
                let flags = OFlags::RDONLY
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC;
                let fd = rfs::openat(parent, name, flags, Mode::empty())?;
                let st = rfs::fstat(&fd)?;
                if kind(&st) != FileType::RegularFile {
                    return Err(invalid(format!("{rel}: replaced while it was being added")));
                }
                let attrs = self.attrs_of_stat(&st);
                let entry = self.claim(rel)?;
                let size = u64::try_from(st.st_size).unwrap_or(0);
                self.append(EntryType::Regular, &entry, &attrs, size, File::from(fd))?;
                Ok(None)
            }
            t @ (FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice) => {
                let kind = match t {
                    FileType::Fifo => EntryType::Fifo,
                    FileType::CharacterDevice => EntryType::Char,
                    _ => EntryType::Block,
                };
                let attrs = self.attrs_of_stat(&st);
                self.special(rel, kind, &attrs, st.st_rdev)?;
                Ok(None)
            }
            // Sockets (and anything unknown) have no place in an image, as in add_tree.
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::archive::Compression;
    use crate::schema::ImageManifest;

    fn open(path: &std::path::Path) -> OwnedFd {
        rfs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    /// Entry name → (type, link target, content) of an uncompressed ACI.
    fn entries(tar: &[u8]) -> BTreeMap<String, (EntryType, String, Vec<u8>)> {
        let mut out = BTreeMap::new();
        for e in tar::Archive::new(tar).entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            out.insert(name, (e.header().entry_type(), link, data));
        }
        out
    }

    fn pack(dir: BorrowedFd<'_>, at: &str) -> io::Result<Vec<u8>> {
        let m = ImageManifest::new("example.com/export");
        let mut b = AciBuilder::new(Vec::new(), Compression::None, &m)?;
        b.add_tree_at(dir, at)?;
        b.finish()
    }

    #[test]
    fn symlinks_are_stored_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("host");
        std::fs::create_dir(&secret).unwrap();
        std::fs::write(secret.join("secret"), "host secret").unwrap();
        let root = t.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::write(root.join("etc/hosts"), "pod file").unwrap();
        symlink(&secret, root.join("etc/sub/escape")).unwrap();
        symlink(&secret, root.join("abs")).unwrap();
        symlink("../../host/secret", root.join("rel")).unwrap();
        rfs::mknodat(
            rfs::CWD,
            root.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();

        let tar = pack(open(&root).as_fd(), "/").unwrap();
        let e = entries(&tar);
        let names: Vec<&str> = e.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "manifest",
                "rootfs",
                "rootfs/abs",
                "rootfs/etc",
                "rootfs/etc/hosts",
                "rootfs/etc/sub",
                "rootfs/etc/sub/escape",
                "rootfs/fifo",
                "rootfs/rel",
            ]
        );
        let secret_path = secret.display().to_string();
        assert_eq!(e["rootfs/abs"].0, EntryType::Symlink);
        assert_eq!(e["rootfs/abs"].1, secret_path);
        assert_eq!(e["rootfs/etc/sub/escape"].1, secret_path);
        assert_eq!(e["rootfs/rel"].1, "../../host/secret");
        assert_eq!(e["rootfs/etc/hosts"].2, b"pod file");
        assert_eq!(e["rootfs/fifo"].0, EntryType::Fifo);
        assert!(
            !tar.windows(11).any(|w| w == b"host secret"),
            "a host file was packed"
        );

        // Under a path in the rootfs, with the directory's own metadata.
        let tar = pack(open(&root.join("etc")).as_fd(), "/opt/etc").unwrap();
        let e = entries(&tar);
        assert_eq!(e["rootfs/opt/etc"].0, EntryType::Directory);
        assert_eq!(e["rootfs/opt/etc/hosts"].2, b"pod file");
    }

    #[test]
    fn a_symlink_as_the_top_is_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        symlink(t.path().join("real"), t.path().join("link")).unwrap();
        let fd = rfs::open(
            t.path().join("link"),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        assert!(pack(fd.as_fd(), "/").is_err());
    }

    #[test]
    fn depth_is_bounded() {
        let t = tempfile::tempdir().unwrap();
        let deep = (0..=MAX_TREE_DEPTH).fold(t.path().join("root"), |p, _| p.join("d"));
        std::fs::create_dir_all(&deep).unwrap();
        let err = pack(open(&t.path().join("root")).as_fd(), "/").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("directory tree deeper than 512 levels"),
            "{err}"
        );
        // One level less is fine.
        std::fs::remove_dir(&deep).unwrap();
        pack(open(&t.path().join("root")).as_fd(), "/").unwrap();
    }
}
