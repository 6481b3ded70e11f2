//! Files of rendered trees that can stand in for the blob: a file is compared with the same
//! file read from the image's blob (itself checked against the image ID) once, and then
//! trusted while its identity (device, inode, size, mtime, ctime) is unchanged, as the blob's
//! own `verified` record is. Userspace cannot set a ctime, so any change to the file (a
//! write, a chmod, a replacement) sends the next caller back to the blob.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};

use crate::{ImageKey, Result, Store, StoreError, TreeId};

/// In an image's directory: the tree files verified against its blob.
const RECORD: &str = "verified-tree-files";

/// What [`Store::verified_tree_file`] found.
#[derive(Debug)]
pub enum TreeFile {
    /// The tree's file, open for reading, with the blob's content.
    Verified(File),
    /// The image's blob has no regular file at that path.
    NotInImage,
    /// The tree's file is missing, is not a plain root-owned file, or differs from the blob.
    Unverified,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(file: &File) -> Option<Identity> {
        let m = file.metadata().ok()?;
        Some(Identity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    tree: String,
    path: String,
    identity: Identity,
}

/// Opens `path` below `dir` for reading, through no symlink: `None` if that fails or if it is
/// not a regular file that only root can change.
fn open_plain_file(dir: &std::path::Path, path: &str, max_size: u64) -> Option<File> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    let root = File::open(dir).ok()?;
    let fd = openat2(
        &root,
        path.trim_start_matches('/'),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let file = File::from(fd);
    let m = file.metadata().ok()?;
    let plain = m.is_file() && m.uid() == 0 && m.mode() & 0o022 == 0 && m.size() <= max_size;
    plain.then_some(file)
}

impl Store {
    /// The regular file `path` of the rendered tree `tree`, open, if it has the content of the
    /// same file in the blob of `key` (one of the images the tree was rendered from): known
    /// from an earlier comparison while the file's identity is unchanged, or compared now
    /// (which reads and checks the blob). Files larger than `max_size` are not considered.
    pub fn verified_tree_file(
        &self,
        key: &ImageKey,
        tree: &TreeId,
        path: &str,
        max_size: u64,
    ) -> Result<TreeFile> {
        let Some(mut file) = open_plain_file(&self.tree_dir(tree).join("rootfs"), path, max_size)
        else {
            return Ok(TreeFile::Unverified);
        };
        let Some(identity) = Identity::of(&file) else {
            return Ok(TreeFile::Unverified);
        };
        let record = self.image_dir(key).join(RECORD);
        let mut entries: Vec<Entry> = std::fs::read(&record)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let wanted = |e: &Entry| e.tree == tree.as_str() && e.path == path;
        if entries.iter().any(|e| wanted(e) && e.identity == identity) {
            return Ok(TreeFile::Verified(file));
        }
        let mut from_blob = Vec::new();
        if !self.read_verified_file(key, path, &mut from_blob, max_size)? {
            return Ok(TreeFile::NotInImage);
        }
        let mut in_tree = Vec::with_capacity(from_blob.len());
        let read = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_end(&mut in_tree));
        // Unchanged while it was read: the comparison holds for this identity.
        if read.is_err() || in_tree != from_blob || Identity::of(&file) != Some(identity.clone()) {
            return Ok(TreeFile::Unverified);
        }
        // Entries of trees removed since go too.
        entries.retain(|e| {
            !wanted(e) && TreeId::parse(&e.tree).is_some_and(|t| self.tree_dir(&t).is_dir())
        });
        entries.push(Entry {
            tree: tree.as_str().to_string(),
            path: path.to_string(),
            identity,
        });
        // Best effort: without the record the next caller compares again, nothing worse.
        let tmp = record.with_extension(format!("tmp-{}", std::process::id()));
        let json = serde_json::to_vec(&entries)
            .map_err(|e| StoreError::io("serialize", &record, std::io::Error::other(e)))?;
        if std::fs::write(&tmp, json).is_ok() && std::fs::rename(&tmp, &record).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| StoreError::io("seek", &record, e))?;
        Ok(TreeFile::Verified(file))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use aci::archive::{AciBuilder, Compression};
    use aci::schema::ImageManifest;

    use super::*;
    use crate::ImportOptions;

    fn stage1_image() -> Vec<u8> {
        let m = ImageManifest::new("example.com/stage1");
        let mut b = AciBuilder::new(Vec::new(), Compression::None, &m).unwrap();
        b.add_file("stage1", 0o755, b"the stage1 binary").unwrap();
        b.add_symlink("init", "stage1").unwrap();
        b.finish().unwrap()
    }

    fn rendered() -> (tempfile::TempDir, Store, ImageKey, TreeId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let opts = ImportOptions {
            render: true,
            ..ImportOptions::default()
        };
        let key = store
            .import(&mut Cursor::new(stage1_image()), &opts)
            .unwrap()
            .image_key();
        let tree = TreeId::for_images(std::slice::from_ref(&key));
        (dir, store, key, tree)
    }

    fn content(found: TreeFile) -> Option<Vec<u8>> {
        match found {
            TreeFile::Verified(mut f) => {
                let mut out = Vec::new();
                f.read_to_end(&mut out).unwrap();
                Some(out)
            }
            _ => None,
        }
    }

    #[test]
    fn a_tree_file_is_trusted_once_compared_and_while_unchanged() {
        // Only root-owned files are considered.
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let (_dir, store, key, tree) = rendered();
        let check = || {
            store
                .verified_tree_file(&key, &tree, "stage1", 1 << 20)
                .unwrap()
        };
        assert_eq!(content(check()).as_deref(), Some(&b"the stage1 binary"[..]));
        // Recorded: the blob is not read again while the tree's file is unchanged.
        let blob = store.image_dir(&key).join("blob");
        let genuine = std::fs::read(&blob).unwrap();
        std::fs::write(&blob, b"not an image").unwrap();
        assert!(content(check()).is_some());
        std::fs::write(&blob, &genuine).unwrap();
        // Rewritten with other content: never trusted.
        let file = store.tree_dir(&tree).join("rootfs/stage1");
        std::fs::write(&file, b"the evil binary!!").unwrap();
        assert!(matches!(check(), TreeFile::Unverified));
        // Changed back: its identity changed, so it is compared again, and trusted again.
        std::fs::write(&file, b"the stage1 binary").unwrap();
        assert_eq!(content(check()).as_deref(), Some(&b"the stage1 binary"[..]));
        // A changed file whose blob changed too is an error, not a run.
        std::fs::write(&blob, b"not an image").unwrap();
        std::fs::write(&file, b"the stage1 binary").unwrap();
        assert!(store
            .verified_tree_file(&key, &tree, "stage1", 1 << 20)
            .is_err());
    }

    #[test]
    fn only_plain_files_inside_the_tree_count() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let (_dir, store, key, tree) = rendered();
        let check = |path| {
            store
                .verified_tree_file(&key, &tree, path, 1 << 20)
                .unwrap()
        };
        // A symlink (the tree's own `init`), a path out of the tree, a missing file.
        for path in ["init", "../rootfs/stage1", "/../../image", "missing"] {
            assert!(matches!(check(path), TreeFile::Unverified), "{path}");
        }
        // Too large to be considered.
        let small = store.verified_tree_file(&key, &tree, "stage1", 4).unwrap();
        assert!(matches!(small, TreeFile::Unverified));
        // Writable by others: not trusted.
        let file = store.tree_dir(&tree).join("rootfs/stage1");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o757)).unwrap();
        assert!(matches!(check("stage1"), TreeFile::Unverified));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(check("stage1"), TreeFile::Verified(_)));
        // In the tree but not in the image's blob.
        std::fs::write(store.tree_dir(&tree).join("rootfs/extra"), b"x").unwrap();
        assert!(matches!(check("extra"), TreeFile::NotInImage));
    }
}
