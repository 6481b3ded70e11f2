//! Run-time setup (docs/stage-contract.md, "Pod directory" and "Mount namespace"): the stage1
//! and app overlays, mounted under the pod directory in the pod's own mount namespace. Pods
//! from older builds may still have them in the host's, where `rkt gc` finds and unmounts
//! them. A read-only view of an exited app's root is mounted for `rkt export`.
use std::path::{Path, PathBuf};

use aci::schema::PodManifest;
use anyhow::{Context, Result};
use store::{Store, TreeId};

use crate::contract::{
    APPS_INFO, APP_TREE_ID, OVERLAY_DIR, OVERLAY_PREPARED, STAGE1_ROOTFS, STAGE1_TREE_ID,
    STAGE2_DIR, STATUS_DIR,
};
use crate::sys;

/// Unmounts what was mounted so far unless disarmed (setup failed half-way).
pub struct MountGuard {
    mounted: Vec<PathBuf>,
    armed: bool,
}

impl MountGuard {
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if self.armed {
            for target in self.mounted.iter().rev() {
                // Already failing; the pod stays collectable by gc if this fails too.
                let _ = sys::unmount(target);
            }
        }
    }
}

pub fn uses_overlay(pod_dir: &Path) -> bool {
    pod_dir.join(OVERLAY_PREPARED).exists()
}

fn read_tree_id(path: &Path) -> Result<TreeId> {
    let s =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    TreeId::parse(s.trim()).with_context(|| format!("{} holds an invalid tree id", path.display()))
}

/// Mounts the stage1 overlay and one overlay per app (overlay-prepared pods only).
pub fn mount_overlays(pod_dir: &Path, store: &Store, manifest: &PodManifest) -> Result<MountGuard> {
    let mut guard = MountGuard {
        mounted: Vec::new(),
        armed: true,
    };
    if !uses_overlay(pod_dir) {
        return Ok(guard);
    }
    let s1root = pod_dir.join(STAGE1_ROOTFS);
    let s1tree = read_tree_id(&pod_dir.join(STAGE1_TREE_ID))?;
    let s1lower = store.tree_dir(&s1tree).join("rootfs");
    let overlay = pod_dir.join(OVERLAY_DIR).join(s1tree.as_str());
    let (upper, work) = (overlay.join("upper"), overlay.join("work"));
    mkdirs(&[&upper, &work])?;
    sys::mount_overlay(&s1lower, &upper, &work, &s1root)
        .context("cannot mount the stage1 overlay")?;
    guard.mounted.push(s1root.clone());
    mkdirs(&[&s1root.join(STATUS_DIR)])?;

    for app in &manifest.apps {
        let tree = read_tree_id(&pod_dir.join(APPS_INFO).join(&app.name).join(APP_TREE_ID))?;
        let lower = store.tree_dir(&tree).join("rootfs");
        let overlay = pod_dir.join(OVERLAY_DIR).join(tree.as_str());
        let (upper, work) = (
            overlay.join("upper").join(&app.name),
            overlay.join("work").join(&app.name),
        );
        let app_dir = s1root.join(STAGE2_DIR).join(&app.name);
        let target = app_dir.join("rootfs");
        mkdirs(&[&upper, &work, &target])?;
        let manifest_src = pod_dir.join(APPS_INFO).join(&app.name).join("manifest");
        std::fs::copy(&manifest_src, app_dir.join("manifest"))
            .with_context(|| format!("cannot copy {}", manifest_src.display()))?;
        sys::mount_overlay(&lower, &upper, &work, &target)
            .with_context(|| format!("cannot mount the overlay of app {}", app.name))?;
        guard.mounted.push(target.clone());
        link_mtab(&target)?;
    }
    Ok(guard)
}

/// Mounts a read-only view of an exited app's root filesystem (its overlay's upper directory
/// over the image's tree) on the pod's stage1 root directory, which the host never sees
/// mounted any more, and returns the directory it is mounted on. The caller must be in a
/// mount namespace of its own ([`crate::sys::private_mount_namespace`]): the view lasts as
/// long as that process. `None` when the pod does not use overlays.
pub fn mount_exited_app_view(pod_dir: &Path, store: &Store, app: &str) -> Result<Option<PathBuf>> {
    if !uses_overlay(pod_dir) {
        return Ok(None);
    }
    let tree = read_tree_id(&pod_dir.join(APPS_INFO).join(app).join(APP_TREE_ID))?;
    let lower = store.tree_dir(&tree).join("rootfs");
    if !lower.is_dir() {
        anyhow::bail!(
            "the image of app {app} is no longer in the store (tree {tree}): its root filesystem cannot be rebuilt"
        );
    }
    let upper = pod_dir
        .join(OVERLAY_DIR)
        .join(tree.as_str())
        .join("upper")
        .join(app);
    let target = pod_dir.join(STAGE1_ROOTFS);
    // Made by stage0 as a directory; anything else was planted, and is not mounted over.
    if !target.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        anyhow::bail!(
            "{} is not a directory: refusing to mount the app's root there",
            target.display()
        );
    }
    if upper.is_dir() {
        sys::mount_overlay_readonly(&[&upper, &lower], &target)?;
    } else {
        // The app never ran: its root is the image's.
        sys::mount_overlay_readonly(&[&lower], &target)?;
    }
    Ok(Some(target))
}

/// Where an app has `/etc` but no `/etc/mtab`, rkt links it to the kernel's mount table.
fn link_mtab(rootfs: &Path) -> Result<()> {
    let etc = rootfs.join("etc");
    let is_real_dir = etc.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false);
    let mtab = etc.join("mtab");
    if is_real_dir && mtab.symlink_metadata().is_err() {
        std::os::unix::fs::symlink("../proc/self/mounts", &mtab)
            .with_context(|| format!("cannot create {}", mtab.display()))?;
    }
    Ok(())
}

fn mkdirs(dirs: &[&Path]) -> Result<()> {
    for d in dirs {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    Ok(())
}

/// Mount points at or below `dir` in this mount namespace, deepest first.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read /proc/self/mountinfo")?;
    let mut found: Vec<PathBuf> = mount_points(&info).filter(|p| p.starts_with(dir)).collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// Every mount point of a mountinfo text (its fifth field), unescaped.
pub fn mount_points(mountinfo: &str) -> impl Iterator<Item = PathBuf> + '_ {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts everything under the pod directory (deepest first; busy ones lazily).
pub fn unmount_all(pod_dir: &Path) -> Result<()> {
    for target in mounts_under(pod_dir)? {
        sys::unmount(&target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/end\\"), "/end\\");
    }
}
