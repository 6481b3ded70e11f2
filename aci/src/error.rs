//! Error types of the crate, one enum per domain.
//!
//! Messages are lower-case, name the offending field, value or archive entry, and never repeat
//! their `#[source]`.
use std::io;

/// A manifest field (or a flag value that becomes one) breaks an appc rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field} must be set")]
    Missing { field: String },
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: String,
    },
    #[error("duplicate {field} {value:?}")]
    Duplicate { field: String, value: String },
}

impl ValidationError {
    pub(crate) fn missing(field: impl Into<String>) -> ValidationError {
        ValidationError::Missing {
            field: field.into(),
        }
    }

    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> ValidationError {
        ValidationError::Invalid {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn duplicate(field: impl Into<String>, value: impl Into<String>) -> ValidationError {
        ValidationError::Duplicate {
            field: field.into(),
            value: value.into(),
        }
    }
}

/// An image or pod manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot decode the manifest JSON")]
    Json(#[source] serde_json::Error),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// A user or group of an app could not be resolved inside its root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Begins with rkt's phrase, which its tests match.
    #[error("{name:?} user not found in /etc/passwd of the app (use a numeric uid or add the user to the image)")]
    UserNotFound { name: String },
    /// Begins with rkt's phrase, which its tests match.
    #[error("{name:?} group not found in /etc/group of the app (use a numeric gid or add the group to the image)")]
    GroupNotFound { name: String },
    #[error("cannot stat {path} inside the app root {root}")]
    Stat {
        root: String,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path} inside the app root {root}")]
    Read {
        root: String,
        path: String,
        #[source]
        source: io::Error,
    },
}

/// An ACI could not be read, validated or extracted.
///
/// Every variant about an archive member carries `entry`, the member name as stored in the tar
/// (lossily decoded).
#[derive(Debug, thiserror::Error)]
pub enum AciError {
    #[error("cannot read the image: corrupt or truncated archive or compressed stream")]
    Read(#[source] io::Error),
    #[error("entry {entry:?}: truncated archive (expected {expected} bytes, got {got})")]
    Truncated {
        entry: String,
        expected: u64,
        got: u64,
    },
    #[error("entry {entry:?}: absolute path or \"..\" component, refusing to leave the image")]
    UnsafePath { entry: String },
    #[error("entry {entry:?}: outside rootfs/ (an ACI holds only \"manifest\" and \"rootfs/\")")]
    OutsideRootfs { entry: String },
    #[error("entry {entry:?}: duplicate entry in archive")]
    Duplicate { entry: String },
    #[error("entry {entry:?}: the manifest must be a regular file")]
    ManifestNotRegular { entry: String },
    #[error("entry {entry:?}: manifest of {size} bytes exceeds the limit of {max} bytes")]
    ManifestTooLarge {
        entry: String,
        size: u64,
        max: usize,
    },
    #[error("entry {entry:?}: rootfs must be a directory")]
    RootfsNotDir { entry: String },
    #[error("image has no manifest")]
    MissingManifest,
    #[error("image has no rootfs directory")]
    MissingRootfs,
    #[error("invalid image manifest")]
    InvalidManifest(#[source] crate::ManifestError),
    #[error("trailing data after the end of the archive: non-zero byte {offset} bytes past the end marker (only zero padding may follow a tar archive)")]
    TrailingData { offset: u64 },
    #[error("trailing data after the end of the archive: more than {max} bytes (not a single ACI, or an endless input)")]
    TrailingTooLong { max: u64 },
    #[error("entry {entry:?}: unsupported tar entry type {kind:?}")]
    UnsupportedType { entry: String, kind: char },
    #[error("entry {entry:?}: symlink target {target:?} climbs above the rootfs")]
    SymlinkEscape { entry: String, target: String },
    #[error("entry {entry:?}: empty symlink target")]
    EmptySymlink { entry: String },
    #[error("entry {entry:?}: hard link target {target:?} {problem}")]
    BadHardLink {
        entry: String,
        target: String,
        problem: &'static str,
    },
    #[error("entry {entry:?}: a parent directory is a symlink, refusing to write through it")]
    ThroughSymlink { entry: String },
    #[error("entry {entry:?}: a parent path is not a directory")]
    ParentNotDir { entry: String },
    #[error("entry {entry:?}: already exists in the target directory")]
    Exists { entry: String },
    #[error("entry {entry:?}: {op} failed")]
    Extract {
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot open the target directory {path}")]
    Target {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("entry {entry:?}: {size} bytes, more than the {max} bytes allowed")]
    MemberTooLarge { entry: String, size: u64, max: u64 },
    #[error("entry {entry:?}: invalid sparse file: {problem}")]
    BadSparse {
        entry: String,
        problem: &'static str,
    },
    #[cfg(feature = "archive")]
    #[error(transparent)]
    Limit(#[from] crate::archive::LimitExceeded),
    #[error("cannot start the {what} thread")]
    Thread {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("path whitelist: cannot {op} {path}")]
    Whitelist {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}
