//! rkt's on-disk image store, under `<data dir>/cas`.
//!
//! Layout (every entry appears by one `rename(2)`, so a crash or `kill -9` never leaves half an
//! image or half a tree where readers look):
//!
//! ```text
//! cas/lock                      store lock: shared for import/render/use, exclusive for rm and gc
//! cas/tmp/<work>/               in-progress imports and renders, each holding `<work>/.lock`
//! cas/image/<key>/blob          the ACI exactly as it was fetched (possibly compressed)
//! cas/image/<key>/manifest      its image manifest
//! cas/image/<key>/info.json     index record: name, labels, times, sizes, origin URL
//! cas/tree/<tree id>/rootfs/    rendered image plus its dependencies (overlay lower dir)
//! cas/tree/<tree id>/manifest   the top image's manifest
//! cas/tree/<tree id>/rendered.json  which images, size and a metadata digest for verification
//! cas/locks/<key>.lock          serialises commits of one image; deleted with the image
//! cas/locks/<tree id>.lock      serialises renders of one tree; deleted with the tree
//! cas/remote/<sha256(url)>.json what a remote URL gave: image, ETag, max-age, download time
//! ```
//!
//! `<key>` is `sha512-` plus the first 64 hex digits of the uncompressed tar's SHA-512, as rkt
//! stores it.
#![forbid(unsafe_code)]

mod atomic;
mod blob;
mod error;
mod import;
mod index;
mod key;
mod layout;
mod lock;
mod remote;
mod tree;
mod tree_file;
mod usage;
mod workdir;

use std::path::{Path, PathBuf};

pub use aci::archive::{LimitExceeded, Limits};
pub use blob::BlobReader;
pub use error::StoreError;
pub use import::ImportOptions;
pub use index::ImageInfo;
pub use key::{is_image_hash, ImageKey, TreeId};
pub use layout::real_dir;
pub use lock::StoreLock;
pub use remote::RemoteRecord;
pub use tree::{TreeCheck, TreeInfo};
pub use tree_file::TreeFile;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Name of the store directory below rkt's data directory.
pub const CAS_DIR: &str = "cas";

/// An open image store.
#[derive(Debug, Clone)]
pub struct Store {
    cas: PathBuf,
    limits: Limits,
}

impl Store {
    /// Opens (creating if needed) the store under `data_dir` (rkt's `--dir`), with the default
    /// [`Limits`]. `cas` and its subdirectories must be real directories: a symlink there is
    /// [`StoreError::Symlink`], never followed.
    pub fn open(data_dir: &Path) -> Result<Store> {
        layout::create(data_dir, CAS_DIR, &["tmp", "image", "tree", "locks"])?;
        let store = Store {
            cas: data_dir.join(CAS_DIR),
            limits: Limits::default(),
        };
        let lock = store.lock_path();
        lock::open_lock_file(&lock)?;
        Ok(store)
    }

    /// Sets what reading an image may cost, for every later import, render, extraction and
    /// read of a stored blob: an image past a limit is [`StoreError::Limit`] and leaves nothing
    /// in the store.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The `cas` directory.
    pub fn dir(&self) -> &Path {
        &self.cas
    }

    fn lock_path(&self) -> PathBuf {
        self.cas.join("lock")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.cas.join("tmp")
    }

    fn image_dir(&self, key: &ImageKey) -> PathBuf {
        self.cas.join("image").join(key.as_str())
    }

    fn images_dir(&self) -> PathBuf {
        self.cas.join("image")
    }

    fn trees_dir(&self) -> PathBuf {
        self.cas.join("tree")
    }

    /// `cas/locks/<name>.lock`: serialises the imports of one image, or the renders of one
    /// tree, and is deleted with it.
    fn entry_lock_path(&self, name: &str) -> PathBuf {
        self.cas.join("locks").join(format!("{name}.lock"))
    }

    /// Deletes the lock files of images and trees no longer in the store (left by a killed
    /// `image rm`, or by an import or render that never committed), unless a process holds
    /// them.
    pub fn clean_stale_locks(&self) -> Result<()> {
        let dir = self.cas.join("locks");
        let entries =
            std::fs::read_dir(&dir).map_err(|e| StoreError::io("read directory", &dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str().and_then(|n| n.strip_suffix(".lock")) else {
                continue;
            };
            let stored = |d: PathBuf| d.join(name).symlink_metadata().is_ok();
            if stored(self.images_dir()) || stored(self.trees_dir()) {
                continue;
            }
            lock::StoreLock::remove_unused(&entry.path())?;
        }
        Ok(())
    }

    /// Directory of a rendered tree (`rootfs/` and `manifest` inside).
    pub fn tree_dir(&self, id: &TreeId) -> PathBuf {
        self.trees_dir().join(id.as_str())
    }

    /// Takes the store lock shared: imports, renders and pod preparation run concurrently.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        StoreLock::acquire(&self.lock_path(), false)
    }

    /// Takes the store lock exclusively: removing images and trees waits for every user.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        StoreLock::acquire(&self.lock_path(), true)
    }
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
