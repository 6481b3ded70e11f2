//! Stage1 entrypoints as sealed in-memory copies, taken from the stored image blob and
//! checked against the image's ID on the way (the blob's SHA-512 is the ID), as runc does for
//! itself since CVE-2019-5736. What stage0 executes can then be neither a file some process
//! had open through `/proc/<pid>/exe` and wrote to, nor a tampered rendered tree: the sealed
//! copy cannot be written, and a changed store fails the check.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use anyhow::{bail, Context, Result};
use store::{ImageKey, Store, TreeId};

use crate::sys;

/// Larger entrypoints are refused (a stage1 binary is a few MiB).
const MAX_ENTRYPOINT: u64 = 256 << 20;

/// A sealed copy of an entrypoint, ready to execute.
pub struct Program {
    pub file: File,
}

/// The entrypoint `entry` (a path in the stage1 root) of the stage1 whose tree is `tree`,
/// rendered from `images` (dependencies first).
pub fn program(store: &Store, tree: &TreeId, images: &[ImageKey], entry: &str) -> Result<Program> {
    // Our stage1's entrypoints are symlinks to one multi-call binary: find the file they name
    // in the rendered tree. The tree only picks the path; the content comes from the blob.
    let rootfs = store.tree_dir(tree).join("rootfs");
    let resolved = aci::rootfs::resolve_in_root(&rootfs, entry)
        .with_context(|| format!("cannot resolve {entry} in the stage1 tree"))?;
    let rel = resolved
        .strip_prefix(&rootfs)
        .ok()
        .and_then(|p| p.to_str())
        .with_context(|| format!("{entry} resolves outside the stage1 tree"))?
        .to_string();
    let name = rel.rsplit('/').next().unwrap_or("stage1");
    // The image rendered last wins, as in the tree.
    for key in images.iter().rev() {
        let mut file = sys::memfd(name)?;
        if store
            .read_verified_file(key, &rel, &mut file, MAX_ENTRYPOINT)
            .with_context(|| format!("stage1 image {key}"))?
        {
            let script = starts_with_shebang(&mut file)?;
            sys::seal(&file, script)?;
            return Ok(Program { file });
        }
    }
    bail!("no regular file {rel} in the stage1 image (entrypoint {entry})")
}

/// A script is run by its interpreter through `/proc/self/fd/<n>`, which must then stay open
/// across exec: such copies are not close-on-exec.
fn starts_with_shebang(file: &mut File) -> Result<bool> {
    let mut head = [0u8; 2];
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read(&mut head))
        .context("cannot read back the entrypoint copy")
        .map(|n| n == 2 && head == *b"#!")
}
