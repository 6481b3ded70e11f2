//! Integration tests: the real `rkt` binary (and the stage1 image built by `make`) as root,
//! each test against its own data directory.
mod integration {
    pub mod bombs;
    pub mod cli;
    pub mod compat;
    pub mod docker;
    pub mod escapes;
    pub mod fetch;
    pub mod hostside;
    pub mod image;
    pub mod image_compat;
    pub mod isolation;
    pub mod isolators;
    pub mod lifecycle;
    pub mod metadata;
    pub mod net;
    pub mod reliability;
    pub mod remote;
    pub mod run;
    pub mod schedulers;
    pub mod volumes;
}
