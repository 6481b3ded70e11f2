//! Crash-safe small-file writes: temp file in the same directory, fsync, rename, fsync the dir.
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::{Result, StoreError};

pub(crate) fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp); // best effort: the write already failed
        return Err(StoreError::io("write", path, e));
    }
    sync_dir(dir)
}

/// Like [`write_file`] but without syncing: readers see the old or the new content, never a
/// mix, but a crash may lose the update.
pub(crate) fn replace_file(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = fs::write(&tmp, data).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io("write", path, e));
    }
    Ok(())
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync directory", dir, e))
}

/// Removes a directory tree if it exists, however deep (a bounded number of descriptors), never
/// following symlinks.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    aci::rootfs::remove_tree(path).map_err(|e| StoreError::io("remove", path, e))
}
