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
    #[error("invalid image ACI")]
    Aci(#[from] aci::AciError),
    #[error("image {0} not found in the store")]
    ImageNotFound(String),
    #[error("ambiguous image ID {prefix}: {count} images match, give more digits")]
    AmbiguousImage { prefix: String, count: usize },
    #[error("{0:?} is not an image ID: expected sha512- followed by at least 2 hex digits")]
    BadImageId(String),
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

impl StoreError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}
