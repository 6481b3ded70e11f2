//! Stage1 entrypoints, executed only with the content of the stored image blob, checked
//! against the image's ID (the blob's SHA-512 is the ID): the rendered tree's file once the
//! store has compared it with the blob and while it is unchanged since
//! ([`Store::verified_tree_file`]), else a sealed in-memory copy taken from the blob, as runc
//! does for itself since CVE-2019-5736. What stage0 executes is never a file that changed
//! since it was checked: a tampered tree falls back to the blob, a tampered blob fails the
//! check (docs/stage-contract.md, "How stage0 executes entrypoints").
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use anyhow::{bail, Context, Result};
use store::{ImageKey, Store, TreeFile, TreeId};

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
    // The tree's own file, once it is known to hold the blob's content: its pages are shared
    // by every process that runs it, where a copy costs each run its copying, faulting in and
    // freeing (4 to 6 ms of a 20 ms `rkt run` here). Scripts keep their sealed copy.
    for key in images.iter().rev() {
        match store
            .verified_tree_file(key, tree, &rel, MAX_ENTRYPOINT)
            .with_context(|| format!("stage1 image {key}"))?
        {
            TreeFile::NotInImage => continue,
            TreeFile::Verified(mut file) => {
                if !starts_with_shebang(&mut file)? {
                    return Ok(Program { file });
                }
                break;
            }
            TreeFile::Unverified => break,
        }
    }
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
