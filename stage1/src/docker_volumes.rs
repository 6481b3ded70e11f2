//! Docker volume semantics: for an app whose image was converted from Docker (it has the
//! `appc.io/docker/repository` annotation), an implicit empty volume starts as a copy of what
//! the image has at the mount point, with that directory's owner and mode, as rkt did.
//!
//! The image's tree is hostile: the mount point is resolved inside the app's root, nothing is
//! ever followed (symlinks are copied as symlinks), only directories, regular files and
//! symlinks are copied, and the depth is bounded. The volume directory was just created by
//! stage1 and nothing runs in the pod yet.
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{lchown, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aci::schema::{ImageManifest, PodManifest};
use anyhow::{bail, Context, Result};

use crate::contract::STAGE2_DIR;
use crate::setup::shared_volume_dir;

const DOCKER_ANNOTATION: &str = "appc.io/docker/repository";
/// Deeper trees are refused.
const MAX_DEPTH: usize = 256;

/// Fills the implicit empty volumes of Docker apps from their images.
pub fn copy_up(pod_dir: &Path, s1root: &Path, manifest: &PodManifest, shift: u32) -> Result<()> {
    for ra in &manifest.apps {
        let app_dir = s1root.join(STAGE2_DIR).join(&ra.name);
        let Ok(bytes) = fs::read(app_dir.join("manifest")) else {
            continue;
        };
        let Ok(im) = ImageManifest::from_slice(&bytes) else {
            continue;
        };
        if !im.annotations.iter().any(|a| a.name == DOCKER_ANNOTATION) {
            continue;
        }
        let Some(app) = ra.app.clone().or(im.app) else {
            continue;
        };
        let mounts = aci::schema::app_mounts(ra, &app, &manifest.volumes)
            .with_context(|| format!("app {}: invalid mounts", ra.name))?;
        let rootfs = app_dir.join("rootfs");
        for m in mounts.iter().filter(|m| m.implicit) {
            let volume = shared_volume_dir(pod_dir, &m.volume.name);
            copy_mount_point(&rootfs, &m.path, &volume, shift).with_context(|| {
                format!(
                    "app {}: cannot copy the image's {} into its volume",
                    ra.name, m.path
                )
            })?;
        }
    }
    Ok(())
}

fn copy_mount_point(rootfs: &Path, target: &str, volume: &Path, shift: u32) -> Result<()> {
    // Only a volume nothing was put in yet (an app sharing it may have filled it already).
    if !volume.is_dir() || fs::read_dir(volume)?.next().is_some() {
        return Ok(());
    }
    let src = aci::rootfs::resolve_in_root(rootfs, target)?;
    let Ok(meta) = fs::symlink_metadata(&src) else {
        return Ok(()); // nothing there in the image
    };
    if !meta.is_dir() {
        return Ok(());
    }
    copy_dir(&src, volume, shift, 0)?;
    set_owner_mode(volume, &meta, shift)
}

fn shifted(id: u32, shift: u32) -> u32 {
    id.saturating_add(shift)
}

fn set_owner_mode(path: &Path, meta: &fs::Metadata, shift: u32) -> Result<()> {
    lchown(
        path,
        Some(shifted(meta.uid(), shift)),
        Some(shifted(meta.gid(), shift)),
    )
    .with_context(|| format!("cannot chown {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

fn copy_dir(src: &Path, dst: &Path, shift: u32, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!("{} is nested too deeply", src.display());
    }
    for entry in fs::read_dir(src).with_context(|| format!("cannot read {}", src.display()))? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&to).with_context(|| format!("cannot create {}", to.display()))?;
            copy_dir(&from, &to, shift, depth + 1)?;
            set_owner_mode(&to, &meta, shift)?;
        } else if kind.is_file() {
            let mut input = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&from)
                .with_context(|| format!("cannot open {}", from.display()))?;
            let mut output: File = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .mode(0o600)
                .open(&to)
                .with_context(|| format!("cannot create {}", to.display()))?;
            io::copy(&mut input, &mut output)
                .with_context(|| format!("cannot copy {}", from.display()))?;
            set_owner_mode(&to, &meta, shift)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&from)?;
            std::os::unix::fs::symlink(&target, &to)
                .with_context(|| format!("cannot create {}", to.display()))?;
            lchown(
                &to,
                Some(shifted(meta.uid(), shift)),
                Some(shifted(meta.gid(), shift)),
            )?;
        }
        // Devices, FIFOs and sockets are not copied: a volume is data.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_tree_is_copied_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(rootfs.join("data/sub")).unwrap();
        fs::write(rootfs.join("data/sub/file"), b"content").unwrap();
        fs::set_permissions(rootfs.join("data"), fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", rootfs.join("data/link")).unwrap();
        // A mount point that is a symlink out of the root resolves inside it.
        std::os::unix::fs::symlink("/../../../../etc", rootfs.join("escape")).unwrap();
        let volume = dir.path().join("vol");
        fs::create_dir(&volume).unwrap();
        copy_mount_point(&rootfs, "/data", &volume, 0).unwrap();
        assert_eq!(fs::read(volume.join("sub/file")).unwrap(), b"content");
        assert_eq!(
            fs::read_link(volume.join("link")).unwrap(),
            Path::new("/etc/shadow")
        );
        assert_eq!(fs::metadata(&volume).unwrap().mode() & 0o777, 0o750);
        let other = dir.path().join("vol2");
        fs::create_dir(&other).unwrap();
        copy_mount_point(&rootfs, "/escape", &other, 0).unwrap();
        assert_eq!(fs::read_dir(&other).unwrap().count(), 0);
    }
}
