//! `rkt version`: schedulers parse the first two lines (SCHEDULERS §1.2).
use anyhow::Result;

pub const RKT_VERSION: &str = env!("CARGO_PKG_VERSION");
pub const APPC_VERSION: &str = "0.8.11";

pub fn run() -> Result<i32> {
    let (os, arch) = crate::image::host_os_arch();
    println!("rkt Version: {RKT_VERSION}");
    println!("appc Version: {APPC_VERSION}");
    println!("Rust Version: {}", env!("RKT_RUSTC_VERSION"));
    println!("Rust OS/Arch: {os}/{arch}");
    println!("Features: -TPM -SDJOURNAL");
    Ok(0)
}
