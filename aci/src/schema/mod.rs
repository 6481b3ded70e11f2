//! appc 0.8.11 image and pod manifests.
//!
//! Reading is as lenient as rkt's (Go) reader: object keys match field names without regard to
//! case, `null` stands for an empty list, map or absent value, and unknown fields are ignored.
//! Writing is canonical: camelCase keys in Go's field order, Go's omission rules (`omitempty`
//! fields are left out when empty) and Go's string escaping, so that writing and reading again
//! yields the same value.
mod app;
mod go_slice;
mod image;
pub(crate) mod json;
mod lenient;
mod mounts;
mod pod;
mod types;

pub use app::{App, EnvVar, EventHandler, MountPoint, Port};
pub use go_slice::GoSlice;
pub use image::{ImageManifest, AC_VERSION, IMAGE_MANIFEST_KIND};
pub use mounts::{app_mounts, covers, mount_target, AppMount};
pub use pod::{
    ExposedPort, Mount, PodManifest, RuntimeApp, RuntimeImage, Volume, POD_MANIFEST_KIND,
};
pub use types::{Annotation, Dependency, Isolator, Label};

pub(crate) use lenient::get_field;

pub(crate) fn check_isolator_name(name: &str) -> Result<(), crate::ValidationError> {
    types::check_identifier("isolator name", name)
}
