//! Helpers shared by the integration tests: locating the built binaries, building test images
//! from Debian's busybox-static with our own `aci` crate, and per-test data directories whose
//! guard cleans up pods and mounts even when a test fails.
pub mod env;
pub mod gpg;
pub mod hostile;
pub mod https;
pub mod images;
pub mod mds;
pub mod netns;
pub mod oci;
pub mod pty;

pub use env::{require_root, TestEnv};
pub use images::ImageSpec;
