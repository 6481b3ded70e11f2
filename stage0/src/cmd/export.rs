//! `rkt export [--app=NAME] [--overwrite] UUID OUT.aci`: an exited pod's app as an image.
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use aci::archive::{AciBuilder, Compression};
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;

use crate::cli::ExportArgs;
use crate::contract::{STAGE1_ROOTFS, STAGE2_DIR};
use crate::globals::Globals;
use crate::output::Log;
use crate::pod::{setup, Pods};
use crate::{outfile, sys};

pub fn run(globals: &Globals, args: &ExportArgs, log: &Log) -> Result<i32> {
    let out = &args.output;
    if out.extension().and_then(|e| e.to_str()) != Some("aci") {
        bail!("extension must be .aci (given {})", out.display());
    }
    let pod = Pods::new(&globals.dir)
        .find(&args.uuid)
        .context("problem retrieving pod")?;
    if !pod.state().is_exited() {
        bail!("pod is not exited. Only exited pods can be exported");
    }
    let manifest = pod.manifest().context("cannot read pod manifest")?;
    let app = match &args.app {
        Some(a) => {
            if !manifest.apps.iter().any(|x| &x.name == a) {
                bail!("unable to find app: app {a} is not present in pod");
            }
            a.clone()
        }
        None => match manifest.apps.len() {
            0 => bail!("unable to find app: pod contains zero apps"),
            1 => manifest.apps[0].name.clone(),
            _ => {
                log.print("pod contains multiple apps:");
                for a in &manifest.apps {
                    log.print(format!("\t{}", a.name));
                }
                bail!("specify app using \"rkt export --app= ...\"");
            }
        },
    };
    // Everything under the pod directory is the pod's to change: the app's root is reached
    // from the pod's descriptor without following any symlink (its overlay mounts are fine).
    let rel = Path::new(STAGE1_ROOTFS)
        .join(STAGE2_DIR)
        .join(&app)
        .join("rootfs");
    let gone = || {
        anyhow!("the root filesystem of app {app} is no longer available (was the pod garbage collected?)")
    };
    let rootfs = match sys::open_dir_beneath(pod.lock_fd(), &rel) {
        Ok(fd) if !is_empty(&fd, &pod.path().join(&rel))? => fd,
        // Overlays live in the pod's mount namespace and went with it: mount what the
        // export needs, for as long as it runs.
        Ok(_) | Err(Errno::ENOENT) => mounted_view(&pod.path(), globals, &app)?.ok_or_else(gone)?,
        Err(Errno::ELOOP | Errno::EXDEV) => bail!(
            "the root filesystem of app {app} is reached through a symlink in the pod ({}); refusing to export it",
            rel.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot open {}", pod.path().join(&rel).display()))
        }
    };
    let overwrite = args.overwrite.unwrap_or(false);
    if out.symlink_metadata().is_ok() && !overwrite {
        bail!("error building aci: target file exists (try --overwrite)");
    }
    let image = pod
        .app_image_manifest(&app)
        .context("cannot read the app's image manifest")?;
    outfile::write_atomically(out, overwrite, |file| {
        let mut builder =
            AciBuilder::new(file, Compression::Gzip, &image).context("error building aci")?;
        builder
            .add_tree_at(rootfs.as_fd(), "/")
            .context("error building aci")?;
        builder.finish().context("error building aci")?;
        Ok(())
    })?;
    Ok(0)
}

fn is_empty(dir: &OwnedFd, path: &Path) -> Result<bool> {
    sys::dir_is_empty(dir.as_fd()).with_context(|| format!("cannot read {}", path.display()))
}

/// An exited app's root, mounted read-only in a mount namespace of this process' own (the
/// host never sees it). `None` for a pod without overlays, whose copy is gone.
fn mounted_view(pod_dir: &Path, globals: &Globals, app: &str) -> Result<Option<OwnedFd>> {
    if !setup::uses_overlay(pod_dir) {
        return Ok(None);
    }
    let store = globals.open_store()?;
    sys::private_mount_namespace(None)?;
    let Some(target) = setup::mount_exited_app_view(pod_dir, &store, app)? else {
        return Ok(None);
    };
    let fd = sys::open_dir(&target)?;
    Ok(Some(fd))
}
