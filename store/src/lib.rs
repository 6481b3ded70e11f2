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
//! cas/locks/<tree id>.lock      serialises renders of one tree
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
mod lock;
mod tree;
mod workdir;

use std::path::{Path, PathBuf};

pub use blob::BlobReader;
pub use error::StoreError;
pub use import::ImportOptions;
pub use index::ImageInfo;
pub use key::{is_image_hash, ImageKey, TreeId};
pub use lock::StoreLock;
pub use tree::{TreeCheck, TreeInfo};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Name of the store directory below rkt's data directory.
pub const CAS_DIR: &str = "cas";

/// An open image store.
#[derive(Debug, Clone)]
pub struct Store {
    cas: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store under `data_dir` (rkt's `--dir`).
    pub fn open(data_dir: &Path) -> Result<Store> {
        let cas = data_dir.join(CAS_DIR);
        for sub in ["", "tmp", "image", "tree", "locks"] {
            let dir = cas.join(sub);
            std::fs::create_dir_all(&dir)
                .map_err(|e| StoreError::io("create directory", &dir, e))?;
        }
        // Images hold device nodes and setuid files: only root may reach into the store.
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&cas).map_err(|e| StoreError::io("stat", &cas, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&cas, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| StoreError::io("chmod", &cas, e))?;
        }
        let store = Store { cas };
        let lock = store.lock_path();
        if !lock.exists() {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&lock)
                .map_err(|e| StoreError::io("create lock file", &lock, e))?;
        }
        Ok(store)
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
mod tests;
