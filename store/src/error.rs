use std::path::{Path, PathBuf};

use crate::ImageKey;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A write failed with ENOSPC or EDQUOT: the disk (or the quota) is full, whatever the
    /// image. Never reported as a broken image.
    #[error("no space left on the device holding {}: free some space there or choose another --dir", path.display())]
    DiskFull {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid image ACI")]
    Aci(#[source] aci::AciError),
    /// The image is larger than the store's limits allow (see [`crate::Store::set_limits`]).
    #[error(transparent)]
    Limit(aci::archive::LimitExceeded),
    #[error("file {} of image {key} is {size} bytes, more than the {max} bytes allowed", path.display())]
    FileTooLarge {
        key: ImageKey,
        path: PathBuf,
        size: u64,
        max: u64,
    },
    #[error("{0} is a symlink; rkt's data directory must contain real directories")]
    Symlink(PathBuf),
    #[error("{0} is not a directory; rkt's data directory must contain real directories")]
    NotDirectory(PathBuf),
    #[error("image {0} not found in the store")]
    ImageNotFound(String),
    #[error("ambiguous image ID {prefix}: {count} images match, give more digits")]
    AmbiguousImage { prefix: String, count: usize },
    #[error("{0:?} is not an image ID: expected sha512- followed by at least 2 hex digits")]
    BadImageId(String),
    /// rkt's phrase, which its tests match.
    #[error("image ID too short: {0:?} (give at least 2 hex digits after sha512-; `rkt image list` shows 12)")]
    IdTooShort(String),
    #[error("image {key} is corrupt on disk (its content hashes to {actual}); remove it with `rkt image rm` and fetch it again")]
    CorruptImage { key: ImageKey, actual: String },
    #[error("image {0} has an unreadable record in the store; remove it with `rkt image rm`")]
    BadRecord(ImageKey, #[source] serde_json::Error),
    #[error("image {key} has an invalid manifest in the store")]
    BadManifest {
        key: ImageKey,
        #[source]
        source: aci::ManifestError,
    },
    #[error("dependency {dependency} of image {image} is not in the store: fetch it first")]
    MissingDependency { image: String, dependency: String },
    #[error("image {0} depends on itself through its dependencies")]
    DependencyCycle(String),
    #[error("rendered tree {0} does not match what was rendered (files changed on disk); it will be rendered again")]
    CorruptTree(String),
}

impl From<aci::AciError> for StoreError {
    fn from(e: aci::AciError) -> StoreError {
        let limit = match &e {
            aci::AciError::Limit(limit) => Some(*limit),
            aci::AciError::Read(io) => aci::archive::LimitExceeded::from_io(io),
            _ => None,
        };
        match limit {
            Some(limit) => StoreError::Limit(limit),
            None => StoreError::Aci(e),
        }
    }
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> StoreError {
        if is_disk_full(&source) {
            return StoreError::DiskFull {
                path: path.to_path_buf(),
                source,
            };
        }
        StoreError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A failed read of an image stream: the limit it went past, or the I/O error.
    pub(crate) fn read(op: &'static str, path: &Path, source: std::io::Error) -> StoreError {
        match aci::archive::LimitExceeded::from_io(&source) {
            Some(limit) => StoreError::Limit(limit),
            None => StoreError::io(op, path, source),
        }
    }
}

/// Whether an error is, or was caused by, a full disk or quota (ENOSPC, EDQUOT), however
/// deeply a reader or archive wrapped it.
pub(crate) fn is_disk_full(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.raw_os_error(),
                Some(code) if code == rustix::io::Errno::NOSPC.raw_os_error()
                    || code == rustix::io::Errno::DQUOT.raw_os_error()
            ) {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                if is_disk_full(inner) {
                    return true;
                }
            }
        }
        next = e.source();
    }
    false
}

impl StoreError {
    /// An error met while writing below `dir`: a full disk there says so, with the place.
    pub(crate) fn writing_in(self, dir: &Path) -> StoreError {
        match self {
            StoreError::Aci(e) if is_disk_full(&e) => StoreError::DiskFull {
                path: dir.to_path_buf(),
                source: std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error()),
            },
            other => other,
        }
    }

    /// A full disk anywhere in the store is reported as the store's (`cas`), which the user
    /// knows, rather than as the temporary entry that failed.
    pub(crate) fn in_store(self, cas: &Path) -> StoreError {
        match self {
            StoreError::DiskFull { source, .. } => StoreError::DiskFull {
                path: cas.to_path_buf(),
                source,
            },
            other => other,
        }
    }
}
