//! The manifest's `pathWhitelist`: once an image is rendered, only the listed paths remain.
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use crate::rootfs::remove_at;
use crate::AciError;

fn whitelist_err<'a>(
    op: &'static str,
    path: &'a [u8],
) -> impl FnOnce(std::io::Error) -> AciError + 'a {
    move |source| AciError::Whitelist {
        op,
        path: format!("/{}", String::from_utf8_lossy(path)),
        source,
    }
}

/// Removes from `rootfs` everything that is not whitelisted. Whitelisted directories and the
/// directories leading to a whitelisted path are kept (their other contents are still
/// filtered). An empty whitelist keeps everything. Symlinks are never followed.
///
/// rkt kept every directory the image itself contained; here a directory survives only when it
/// is listed or leads to a listed path.
pub fn apply_path_whitelist(rootfs: &Path, whitelist: &[String]) -> Result<(), AciError> {
    if whitelist.is_empty() {
        return Ok(());
    }
    let mut keep: HashSet<Vec<u8>> = HashSet::new();
    let mut ancestors: HashSet<Vec<u8>> = HashSet::new();
    for entry in whitelist {
        let parts: Vec<&[u8]> = entry
            .as_bytes()
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        for i in 1..parts.len() {
            ancestors.insert(parts[..i].join(&b'/'));
        }
        keep.insert(parts.join(&b'/'));
    }
    let root = rfs::open(
        rootfs,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| AciError::Whitelist {
        op: "open",
        path: rootfs.display().to_string(),
        source: e.into(),
    })?;
    prune(root.as_fd(), b"", &keep, &ancestors)
}

fn prune(
    dir: BorrowedFd<'_>,
    prefix: &[u8],
    keep: &HashSet<Vec<u8>>,
    ancestors: &HashSet<Vec<u8>>,
) -> Result<(), AciError> {
    let mut children = Vec::new();
    for child in rfs::Dir::read_from(dir).map_err(|e| whitelist_err("list", prefix)(e.into()))? {
        let child = child.map_err(|e| whitelist_err("list", prefix)(e.into()))?;
        let name = child.file_name().to_bytes();
        if name != b"." && name != b".." {
            children.push(name.to_vec());
        }
    }
    for name in children {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            [prefix, b"/", &name].concat()
        };
        let os = OsStr::from_bytes(&name);
        let st = rfs::statat(dir, os, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| whitelist_err("stat", &path)(e.into()))?;
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        let listed = keep.contains(&path);
        if is_dir && (listed || ancestors.contains(&path)) {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let sub = rfs::openat(dir, os, flags, Mode::empty())
                .map_err(|e| whitelist_err("open", &path)(e.into()))?;
            prune(sub.as_fd(), &path, keep, ancestors)?;
        } else if !listed {
            remove_at(dir, os).map_err(whitelist_err("remove", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn keeps_only_listed_paths() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), "x").unwrap();
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["bin", "etc/ssl", "var/lib/app", "tmp"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for f in [
            "bin/sh",
            "bin/ls",
            "etc/passwd",
            "etc/ssl/cert",
            "var/lib/app/db",
        ] {
            std::fs::write(r.join(f), f).unwrap();
        }
        symlink("sh", r.join("bin/ash")).unwrap();
        symlink(outside.path(), r.join("escape")).unwrap();
        let list: Vec<String> = [
            "/bin/sh",
            "/bin/ash",
            "etc/ssl/",
            "/var/lib/app/db",
            "/escape",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        apply_path_whitelist(r, &list).unwrap();
        assert!(r.join("bin/sh").exists());
        assert!(r.join("bin/ash").symlink_metadata().is_ok());
        assert!(!r.join("bin/ls").exists());
        assert!(!r.join("etc/passwd").exists());
        assert!(r.join("etc/ssl").is_dir(), "listed directory kept");
        assert!(!r.join("etc/ssl/cert").exists(), "contents still filtered");
        assert!(r.join("var/lib/app/db").exists());
        assert!(!r.join("tmp").exists());
        assert!(r.join("escape").symlink_metadata().is_ok());
        assert!(outside.path().join("precious").exists());

        // A symlink that is not listed is removed, never followed.
        apply_path_whitelist(r, &["/bin/sh".to_string()]).unwrap();
        assert!(r.join("escape").symlink_metadata().is_err());
        assert!(outside.path().join("precious").exists());
        assert!(apply_path_whitelist(r, &[]).is_ok());
    }
}
