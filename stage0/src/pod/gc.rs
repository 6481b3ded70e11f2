//! Deleting a pod (REFERENCE §2.2 gc/rm): run the stage1 gc entrypoint, unmount everything
//! stage0 or stage1 left mounted under the pod directory, then remove it.
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::{setup, Pod, StateDir};
use crate::contract::ANN_GC;
use crate::globals::Globals;
use crate::output::Log;

/// Deletes a pod the caller has locked and moved to `exited-garbage` or `garbage`.
pub fn delete(pod: &Pod, globals: &Globals, log: &Log) -> Result<()> {
    let dir = pod.path();
    if pod.state_dir() == StateDir::ExitedGarbage {
        if let Err(e) = stage1_gc(&dir, globals, &pod.uuid.to_string()) {
            log.print(format!(
                "problem performing stage1 GC on {:?}: {e:#}",
                pod.uuid.to_string()
            ));
        }
    }
    setup::unmount_all(&dir).with_context(|| {
        format!(
            "GC of leftover mounts for pod {:?} failed",
            pod.uuid.to_string()
        )
    })?;
    // A pod's tree is its apps' to shape: any depth, symlinks anywhere (never followed).
    aci::rootfs::remove_tree(&dir)
        .with_context(|| format!("unable to remove pod {:?}", pod.uuid.to_string()))?;
    Ok(())
}

/// Runs the stage1 gc entrypoint: `[--debug] [--local-config=DIR] UUID`, cwd the pod directory.
/// The binary comes from the pod's stage1 root if still there, else from the tree store.
fn stage1_gc(dir: &Path, globals: &Globals, uuid: &str) -> Result<()> {
    let Ok(manifest) = crate::stage1::pod_stage1_manifest(dir) else {
        return Ok(());
    };
    let Some(entry) = manifest.annotation(ANN_GC).map(str::to_string) else {
        return Ok(());
    };
    // Never from the pod's own (writable) stage1 root: apps could have replaced it.
    let Ok(program) = crate::stage1::store_entrypoint(globals, dir, &entry) else {
        return Ok(());
    };
    let version = crate::stage1::interface_version(&manifest)?;
    let mut cmd = Command::new(&program);
    cmd.current_dir(dir);
    if globals.debug {
        cmd.arg("--debug");
    }
    if version >= 5 {
        cmd.arg(format!("--local-config={}", globals.local_config.display()));
    }
    cmd.arg(uuid);
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", program.display()))?;
    if !status.success() {
        anyhow::bail!("{} exited with {status}", program.display());
    }
    Ok(())
}
