//! Deleting a pod (docs/stage-contract.md, "Removing a pod"): run the stage1 gc entrypoint, unmount everything
//! stage0 or stage1 left mounted under the pod directory, then remove it.
use std::path::Path;

use anyhow::{Context, Result};

use super::{setup, Pod, StateDir};
use crate::globals::Globals;
use crate::output::Log;
use crate::stage1::Stage1;

/// Deletes a pod the caller has locked and moved to `exited-garbage` or `garbage`.
pub fn delete(pod: &Pod, globals: &Globals, log: &Log) -> Result<()> {
    let dir = pod.path();
    if dir.join(crate::contract::MDS_REGISTERED).exists() {
        if let Err(e) = crate::mds::deregister(&pod.uuid.to_string()) {
            log.print(format!(
                "warning: cannot deregister pod {:?} from the metadata service: {e:#}",
                pod.uuid.to_string()
            ));
        }
    }
    if pod.state_dir() == StateDir::ExitedGarbage {
        if let Err(e) = stage1_gc(&dir, globals, &pod.uuid.to_string(), log) {
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

/// Runs the stage1 gc entrypoint (`[--debug] [--local-config=DIR] UUID`, cwd the pod
/// directory), from the verified stage1 image: never a binary of the pod's own root.
fn stage1_gc(dir: &Path, globals: &Globals, uuid: &str, log: &Log) -> Result<()> {
    let store = globals.open_store()?;
    let stage1 = Stage1::of_pod(&store, dir)?;
    if !stage1.gc(&store, dir, globals.debug, &globals.local_config, uuid)? {
        log.debug(format!(
            "stage1 of pod {uuid:?} has no gc entrypoint: nothing to run"
        ));
    }
    Ok(())
}
