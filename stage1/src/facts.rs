//! Facts read from an app's root filesystem and the host before the pod starts: who the app
//! runs as, where its executables are, whether it brings its own `/etc/hosts`, what its volume
//! sources are. Lookups inside the app are confined to its root (symlinks resolved as in a
//! chroot).
use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use aci::schema::{App, AppMount};
use anyhow::{bail, Context, Result};

use crate::plan::{AppFacts, VolumeMount};

/// `volumes` are the app's mount targets: a command inside one comes with the volume and is not
/// looked for in the image.
pub fn read(
    name: &str,
    app: &App,
    rootfs: &Path,
    volumes: &[String],
    restrict_caps: bool,
) -> Result<AppFacts> {
    let uid = aci::user::resolve_uid(rootfs, &app.user)
        .with_context(|| format!("app {name}: cannot resolve user {:?}", app.user))?;
    let gid = aci::user::resolve_gid(rootfs, &app.group)
        .with_context(|| format!("app {name}: cannot resolve group {:?}", app.group))?;
    let Some(exec0) = app.exec.first() else {
        bail!("app {name} has no exec: give one in the image or with --exec");
    };
    let path_var = app.path_var();
    let resolve = |exec0: &str| {
        aci::rootfs::resolve_app_exec(rootfs, exec0, &app.working_directory, &path_var, volumes)
    };
    let exec_path = resolve(exec0).with_context(|| format!("app {name}: cannot run {exec0:?}"))?;
    let mut handler_paths = BTreeMap::new();
    for handler in &app.event_handlers {
        if let Some(h0) = handler.exec.first() {
            let path = resolve(h0)
                .with_context(|| format!("app {name}: {} event handler {h0:?}", handler.name))?;
            handler_paths.insert(h0.clone(), path);
        }
    }
    let has_etc_hosts = aci::rootfs::resolve_in_root(rootfs, "/etc/hosts")
        .map(|p| p.symlink_metadata().is_ok())
        .unwrap_or(false);
    let caps = if restrict_caps {
        Some(crate::caps::app_caps(app).with_context(|| format!("app {name}: capabilities"))?)
    } else {
        None
    };
    Ok(AppFacts {
        uid,
        gid,
        exec_path,
        handler_paths,
        has_etc_hosts,
        caps,
    })
}

/// Checks host volume sources and learns whether each is a file.
pub fn volumes(app: &str, mounts: Vec<AppMount>) -> Result<Vec<VolumeMount>> {
    mounts
        .into_iter()
        .map(|mount| {
            let (source_is_file, source_is_device) = match mount.volume.kind.as_str() {
                "host" => {
                    let src = mount.volume.source.as_deref().unwrap_or_default();
                    let meta = std::fs::metadata(src).with_context(|| {
                        format!(
                            "app {app}: volume {}: host source {src:?} does not exist",
                            mount.volume.name
                        )
                    })?;
                    let kind = meta.file_type();
                    (
                        !kind.is_dir(),
                        kind.is_char_device() || kind.is_block_device(),
                    )
                }
                _ => (false, false),
            };
            Ok(VolumeMount {
                mount,
                source_is_file,
                source_is_device,
            })
        })
        .collect()
}
