//! Copying a rendered tree (for `--no-overlay` pods and `rkt image render`), keeping types,
//! modes, owners and times. Never follows symlinks: they are copied as links.
use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{lchown, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::sys;

/// Copies the contents of `src` into `dst` (created if missing).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let meta =
        fs::symlink_metadata(src).with_context(|| format!("cannot stat {}", src.display()))?;
    if !dst.exists() {
        fs::create_dir_all(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    }
    copy_dir_contents(src, dst)?;
    finish(dst, &meta)
}

fn copy_dir_contents(src: &Path, dst: &Path) -> Result<()> {
    let entries =
        fs::read_dir(src).with_context(|| format!("cannot read directory {}", src.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read directory {}", src.display()))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)
            .with_context(|| format!("cannot stat {}", from.display()))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&to).with_context(|| format!("cannot create {}", to.display()))?;
            copy_dir_contents(&from, &to)?;
            finish(&to, &meta)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&from)
                .with_context(|| format!("cannot read link {}", from.display()))?;
            std::os::unix::fs::symlink(&target, &to)
                .with_context(|| format!("cannot create link {}", to.display()))?;
            lchown(&to, Some(meta.uid()), Some(meta.gid()))
                .with_context(|| format!("cannot chown {}", to.display()))?;
        } else if ft.is_file() {
            fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
            finish(&to, &meta)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() || ft.is_socket() {
            sys::mknod(&to, meta.mode(), meta.rdev())?;
            finish(&to, &meta)?;
        }
    }
    Ok(())
}

/// Owner first (chown clears setuid bits), then mode, then times.
fn finish(path: &Path, meta: &fs::Metadata) -> Result<()> {
    lchown(path, Some(meta.uid()), Some(meta.gid()))
        .with_context(|| format!("cannot chown {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    if meta.is_file() || meta.is_dir() {
        let mtime =
            UNIX_EPOCH + Duration::new(meta.mtime().max(0) as u64, meta.mtime_nsec().max(0) as u32);
        if let Ok(f) = File::open(path) {
            // Times are cosmetic for a private copy; a failure is not worth aborting for.
            let _ = f.set_times(FileTimes::new().set_modified(mtime));
        }
    }
    Ok(())
}
