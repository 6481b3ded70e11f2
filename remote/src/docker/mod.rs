//! Docker images (the Registry HTTP API v2): references, the registry client with bearer and
//! basic auth, layer squashing with whiteouts, and the image config mapped to an appc image
//! manifest as docker2aci does for rkt.
pub mod convert;
pub mod reference;
pub mod registry;
pub mod squash;

pub use reference::DockerRef;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("invalid docker URL {0:?}; expected syntax is \"docker://[REGISTRY_HOST[:REGISTRY_PORT]/]IMAGE_NAME[:TAG]\"")]
    BadReference(String),
    #[error("{0}")]
    Http(#[from] crate::http::HttpError),
    #[error("registry answered {status} for {url}")]
    Status { status: u16, url: String },
    #[error("authentication to {0} failed")]
    Unauthorized(String),
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("unsupported digest {0:?} (only sha256 is)")]
    BadDigest(String),
    #[error("invalid {what}: {detail}")]
    Invalid { what: String, detail: String },
    #[error("no linux/amd64 image in the index of {0}")]
    NoPlatform(String),
    #[error("layer {layer}: {detail}")]
    Layer { layer: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DockerError {
    let context = context.into();
    move |source| DockerError::Io { context, source }
}
