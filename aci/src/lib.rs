//! App Container (appc 0.8.11) support for the rkt re-implementation: image and pod manifests,
//! the appc grammars, resource quantities and isolators, paths and users inside an app root
//! and, with the `archive` feature (default), reading, writing and confined extraction of ACI
//! archives.
#![forbid(unsafe_code)]

pub mod error;
pub mod go;
pub mod isolator;
pub mod quantity;
pub mod rootfs;
pub mod schema;
pub mod seccomp;
pub mod user;
pub mod validate;

#[cfg(feature = "archive")]
pub mod archive;

pub use error::{AciError, ManifestError, UserError, ValidationError};

#[cfg(feature = "archive")]
pub use archive::ImageId;
