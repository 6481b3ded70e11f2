//! Preparing a pod directory (docs/stage-contract.md, "Pod directory"): the stage1 image and every app image are
//! rendered in the store, then recorded (overlay) or copied (`--no-overlay`) into the pod.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aci::schema::{App, ImageManifest, PodManifest};
use anyhow::{bail, Context, Result};
use store::{ImageKey, Store, TreeCheck};

use crate::contract::{
    APPS_INFO, APP_TREE_ID, OVERLAY_PREPARED, POD_CREATED, POD_LOCK_FILE, POD_MANIFEST,
    PRIVATE_USERS_PREPARED, STAGE1_MANIFEST, STAGE1_ROOTFS, STAGE1_TREE_ID, STAGE2_DIR,
};
use crate::pod::copy::copy_tree;

/// How to prepare.
pub struct PrepareOptions<'a> {
    pub stage1: &'a ImageKey,
    pub manifest: &'a PodManifest,
    pub overlay: bool,
    /// How much of each rendered tree to check before use.
    pub check: TreeCheck,
    /// Run the pod in a user namespace of its own (`--private-users`).
    pub private_users: bool,
}

/// rkt's id range for `--private-users`: a random multiple of 65536 (1 to 0x7fff times) and
/// 65536 ids. Ranges of different pods may collide, as in rkt.
fn random_id_range() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let n = u32::from(u16::from_ne_bytes([bytes[0], bytes[1]])) % 0x7fff + 1;
    format!("{}:{}", n << 16, 1u32 << 16)
}

pub fn prepare(pod_dir: &Path, store: &Store, opts: &PrepareOptions<'_>) -> Result<()> {
    let _lock = store
        .lock_shared()
        .context("cannot get shared prepare lock")?;
    let s1tree = store
        .render_tree(opts.stage1, opts.check)
        .with_context(|| format!("cannot render stage1 image {}", opts.stage1))?;
    write(
        &pod_dir.join(STAGE1_TREE_ID),
        s1tree.id.as_str().as_bytes(),
        0o640,
    )?;
    mkdir(&pod_dir.join("stage1"))?;
    write(
        &pod_dir.join(STAGE1_MANIFEST),
        &store.manifest_bytes(opts.stage1)?,
        0o640,
    )?;
    if opts.overlay {
        mkdir(&pod_dir.join(STAGE1_ROOTFS))?;
        write(&pod_dir.join(OVERLAY_PREPARED), b"", 0o640)?;
    } else {
        copy_tree(&s1tree.rootfs(), &pod_dir.join(STAGE1_ROOTFS))
            .context("cannot copy the stage1 image into the pod")?;
    }
    if opts.private_users {
        write(
            &pod_dir.join(PRIVATE_USERS_PREPARED),
            random_id_range().as_bytes(),
            0o640,
        )?;
    }
    store.touch_last_used(opts.stage1)?;

    for app in &opts.manifest.apps {
        let key = ImageKey::parse(&app.image.id)
            .with_context(|| format!("app {}: invalid image ID", app.name))?;
        let image = store.manifest(&key).with_context(|| {
            format!(
                "app {}: image {} is not in the store",
                app.name, app.image.id
            )
        })?;
        check_os_arch(&image).with_context(|| format!("error preparing image {key}"))?;
        let tree = store
            .render_tree(&key, opts.check)
            .with_context(|| format!("cannot render image {}", image.name))?;
        let section = app.app.as_ref().or(image.app.as_ref()).with_context(|| {
            format!(
                "no app section in the pod manifest or the image manifest for app {}",
                app.name
            )
        })?;
        let volumes: Vec<String> = aci::schema::app_mounts(app, section, &opts.manifest.volumes)
            .with_context(|| format!("app {}: invalid mounts", app.name))?
            .into_iter()
            .map(|m| m.path)
            .collect();
        check_app(&app.name, section, &tree.rootfs(), &volumes)?;

        let info = pod_dir.join(APPS_INFO).join(&app.name);
        std::fs::create_dir_all(&info)
            .with_context(|| format!("cannot create {}", info.display()))?;
        let image_manifest = store.manifest_bytes(&key)?;
        write(&info.join("manifest"), &image_manifest, 0o640)?;
        if opts.overlay {
            write(&info.join(APP_TREE_ID), tree.id.as_str().as_bytes(), 0o640)?;
        } else {
            let app_dir = pod_dir.join(STAGE1_ROOTFS).join(STAGE2_DIR).join(&app.name);
            copy_tree(&tree.rootfs(), &app_dir.join("rootfs"))
                .with_context(|| format!("cannot copy image {} into the pod", image.name))?;
            write(&app_dir.join("manifest"), &image_manifest, 0o640)?;
        }
        store.touch_last_used(&key)?;
    }
    write(&pod_dir.join(POD_MANIFEST), &opts.manifest.to_json(), 0o640)?;
    write(&pod_dir.join(POD_LOCK_FILE), b"", 0o600)?;
    write(&pod_dir.join(POD_CREATED), b"", 0o640)?;
    Ok(())
}

/// rkt runs only images whose os/arch labels name a platform it supports (stricter than appc).
pub fn check_os_arch(image: &ImageManifest) -> Result<()> {
    let os = image
        .label("os")
        .context("missing os label in the image manifest")?;
    let arch = image
        .label("arch")
        .context("missing arch label in the image manifest")?;
    if os != "linux" {
        bail!("bad os {os:?} (must be one of: [linux])");
    }
    if !aci::validate::rkt_supports_os_arch(os, arch) {
        bail!("bad arch {arch:?} for linux (must be one of: [amd64 i386 aarch64 aarch64_be armv6l armv7l armv7b ppc64le])");
    }
    Ok(())
}

/// Catches what would make the app fail to start, while the pod is still only prepared. A
/// command inside one of the app's `volumes` (mount targets) comes with the volume, so the
/// image cannot tell.
fn check_app(name: &str, app: &App, rootfs: &Path, volumes: &[String]) -> Result<()> {
    aci::user::resolve_uid(rootfs, &app.user)
        .with_context(|| format!("app {name}: unknown user {:?} in the image", app.user))?;
    aci::user::resolve_gid(rootfs, &app.group)
        .with_context(|| format!("app {name}: unknown group {:?} in the image", app.group))?;
    let Some(exec0) = app.exec.first() else {
        bail!("app {name} has no exec: give one in the image or with --exec");
    };
    let path_var = app.path_var();
    aci::rootfs::resolve_app_exec(rootfs, exec0, &app.working_directory, &path_var, volumes)
        .with_context(|| format!("app {name}: cannot run {exec0:?}"))?;
    Ok(())
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o750))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

fn write(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}
