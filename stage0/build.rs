//! Records the compiler version for `rkt version` and the default stage1 images directory.
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=RKT_RUSTC_VERSION={version}");
    // Where distributions install stage1 images (`make install` uses $(PREFIX)/lib/rkt/stage1-images).
    let dir = std::env::var("RKT_STAGE1_IMAGES_DIR")
        .unwrap_or_else(|_| "/usr/lib/rkt/stage1-images".into());
    println!("cargo:rustc-env=RKT_STAGE1_IMAGES_DIR={dir}");
    println!("cargo:rerun-if-env-changed=RKT_STAGE1_IMAGES_DIR");
    println!("cargo:rerun-if-changed=build.rs");
}
