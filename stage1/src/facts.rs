//! Facts read from an app's root filesystem before the pod starts: who the app runs as, where
//! its executables are, whether it brings its own `/etc/hosts`. All lookups are confined to the
//! app root (symlinks resolved as in a chroot).
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aci::schema::App;
use anyhow::{bail, Context, Result};

use crate::plan::{app_path_var, AppFacts};

pub fn read(name: &str, app: &App, rootfs: &Path) -> Result<AppFacts> {
    let uid = aci::user::resolve_uid(rootfs, &app.user)
        .with_context(|| format!("app {name}: cannot resolve user {:?}", app.user))?;
    let gid = aci::user::resolve_gid(rootfs, &app.group)
        .with_context(|| format!("app {name}: cannot resolve group {:?}", app.group))?;
    let Some(exec0) = app.exec.first() else {
        bail!("app {name} has no exec: give one in the image or with --exec");
    };
    let exec_path = find_executable(name, app, rootfs, exec0)?;
    let mut handler_paths = BTreeMap::new();
    for handler in &app.event_handlers {
        if let Some(h0) = handler.exec.first() {
            let path = find_executable(name, app, rootfs, h0)
                .with_context(|| format!("app {name}: {} event handler", handler.name))?;
            handler_paths.insert(h0.clone(), path);
        }
    }
    let has_etc_hosts = aci::rootfs::resolve_in_root(rootfs, "/etc/hosts")
        .map(|p| p.symlink_metadata().is_ok())
        .unwrap_or(false);
    Ok(AppFacts {
        uid,
        gid,
        exec_path,
        handler_paths,
        has_etc_hosts,
    })
}

/// rkt's rules: absolute paths are used as they are, paths with a slash are relative to the
/// working directory, bare names are searched in the app's `PATH` (REFERENCE §3.6).
fn find_executable(name: &str, app: &App, rootfs: &Path, bin: &str) -> Result<String> {
    let candidate = if bin.starts_with('/') {
        bin.to_string()
    } else if bin.contains('/') {
        let cwd = if app.working_directory.is_empty() {
            "/"
        } else {
            app.working_directory.as_str()
        };
        format!("{}/{bin}", cwd.trim_end_matches('/'))
    } else {
        let path_var = app_path_var(app);
        return aci::rootfs::find_in_path(rootfs, bin, &path_var).with_context(|| {
            format!(
                "app {name}: executable {bin:?} not found in the image (searched PATH {path_var})"
            )
        });
    };
    let host = aci::rootfs::resolve_in_root(rootfs, &candidate)
        .with_context(|| format!("app {name}: cannot resolve {candidate} in the image"))?;
    let meta = std::fs::metadata(&host).with_context(|| {
        format!("app {name}: executable {candidate} does not exist in the image")
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        bail!("app {name}: {candidate} in the image is not an executable file");
    }
    Ok(candidate)
}
