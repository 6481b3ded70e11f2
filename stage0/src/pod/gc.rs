//! Deleting a pod (docs/stage-contract.md, "Removing a pod"): run the stage1 gc entrypoint, unmount everything
//! stage0 or stage1 left mounted under the pod directory, then remove it.
//!
//! `rkt gc` deletes many pods in one run. What is the same for all of them is taken once per
//! run ([`Collector`]): the host's mount table, and each stage1's gc entrypoint, so that a run
//! costs time linear in the number of pods.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use uuid::Uuid;

use super::{setup, Pod, Pods, StateDir};
use crate::globals::Globals;
use crate::output::Log;
use crate::stage1::{LoadedPrograms, Stage1};
use crate::sys;

/// Mount points under pod directories, read once: by pod, relative to the pod directory (a pod
/// may move between state directories after the table was read).
pub struct PodMounts {
    by_pod: HashMap<Uuid, Vec<PathBuf>>,
}

impl PodMounts {
    /// Reads `/proc/self/mountinfo` once and keeps the mount points below `pods/<state>/<uuid>`.
    pub fn read(pods: &Pods) -> Result<PodMounts> {
        let info = std::fs::read_to_string("/proc/self/mountinfo")
            .context("cannot read /proc/self/mountinfo")?;
        Ok(PodMounts::parse(&info, pods.root()))
    }

    fn parse(mountinfo: &str, pods_root: &Path) -> PodMounts {
        let mut by_pod: HashMap<Uuid, Vec<PathBuf>> = HashMap::new();
        for point in setup::mount_points(mountinfo) {
            let Ok(rest) = point.strip_prefix(pods_root) else {
                continue;
            };
            let mut parts = rest.components();
            let (Some(_state), Some(uuid)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some(uuid) = uuid
                .as_os_str()
                .to_str()
                .and_then(|u| Uuid::parse_str(u).ok())
            else {
                continue;
            };
            by_pod
                .entry(uuid)
                .or_default()
                .push(parts.as_path().to_path_buf());
        }
        for mounts in by_pod.values_mut() {
            // Deepest first, so that nothing is unmounted from under another mount.
            mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            mounts.dedup();
        }
        PodMounts { by_pod }
    }

    fn of(&self, uuid: &Uuid) -> &[PathBuf] {
        self.by_pod.get(uuid).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// What deleting pods needs beyond the pod itself, shared by every pod one command deletes.
#[derive(Default)]
pub struct Collector {
    /// The mount table taken once (`rkt gc`); without it each pod reads it afresh (`rkt rm`).
    mounts: Option<PodMounts>,
    programs: LoadedPrograms,
    /// Opened once, for the first pod whose stage1 gc runs.
    store: Option<store::Store>,
}

impl Collector {
    /// For deleting many pods: the mount table is read now, once.
    pub fn with_mount_table(pods: &Pods) -> Result<Collector> {
        Ok(Collector {
            mounts: Some(PodMounts::read(pods)?),
            programs: LoadedPrograms::default(),
            store: None,
        })
    }

    /// Deletes a pod the caller has locked and moved to `exited-garbage` or `garbage`.
    pub fn delete(&mut self, pod: &Pod, globals: &Globals, log: &Log) -> Result<()> {
        let dir = pod.path();
        let uuid = pod.uuid.to_string();
        if dir.join(crate::contract::MDS_REGISTERED).exists() {
            if let Err(e) = crate::mds::deregister(&uuid) {
                log.print(format!(
                    "warning: cannot deregister pod {uuid:?} from the metadata service: {e:#}"
                ));
            }
        }
        if pod.state_dir() == StateDir::ExitedGarbage {
            if let Err(e) = self.stage1_gc(&dir, globals, &uuid, log) {
                log.print(format!("problem performing stage1 GC on {uuid:?}: {e:#}"));
            }
        }
        let unmounted = match &self.mounts {
            Some(table) => table
                .of(&pod.uuid)
                .iter()
                .try_for_each(|rel| sys::unmount(&dir.join(rel))),
            None => setup::unmount_all(&dir),
        };
        unmounted.with_context(|| format!("GC of leftover mounts for pod {uuid:?} failed"))?;
        // A pod's tree is its apps' to shape: any depth, symlinks anywhere (never followed).
        // It never enters a mount the table missed: that is an error, not a deletion.
        aci::rootfs::remove_tree(&dir).with_context(|| format!("unable to remove pod {uuid:?}"))?;
        Ok(())
    }

    /// Runs the stage1 gc entrypoint (`[--debug] [--local-config=DIR] UUID`, cwd the pod
    /// directory), from the verified stage1 image: never a binary of the pod's own root.
    fn stage1_gc(&mut self, dir: &Path, globals: &Globals, uuid: &str, log: &Log) -> Result<()> {
        if self.store.is_none() {
            self.store = Some(globals.open_store()?);
        }
        let store = self.store.as_ref().expect("bug: opened just above");
        let stage1 = Stage1::of_pod(store, dir)?;
        let ran = stage1.gc(
            store,
            dir,
            globals.debug,
            &globals.local_config,
            uuid,
            &mut self.programs,
        )?;
        if !ran {
            log.debug(format!(
                "stage1 of pod {uuid:?} has no gc entrypoint: nothing to run"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_mounts_are_found_by_uuid_relative_to_the_pod() {
        let a = "0b3ed1b8-4c8e-4a45-9a8f-2b1d2f9f7a10";
        let b = "1c4fe2c9-5d9f-4b56-8b9a-3c2e3a0a8b21";
        let info = format!(
            "22 1 0:21 / / rw - ext4 /dev/root rw\n\
             40 22 0:40 / /d/pods/run/{a}/stage1/rootfs rw - overlay overlay rw\n\
             41 40 0:41 / /d/pods/run/{a}/stage1/rootfs/opt/stage2/app/rootfs rw - overlay overlay rw\n\
             42 22 0:42 / /d/pods/exited-garbage/{b}/stage1/rootfs rw - overlay overlay rw\n\
             43 22 0:43 / /d/pods/run/not-a-uuid/x rw - tmpfs t rw\n\
             44 22 0:44 / /elsewhere/{a} rw - tmpfs t rw\n"
        );
        let table = PodMounts::parse(&info, Path::new("/d/pods"));
        let a_mounts = table.of(&Uuid::parse_str(a).unwrap());
        assert_eq!(
            a_mounts,
            [
                PathBuf::from("stage1/rootfs/opt/stage2/app/rootfs"),
                PathBuf::from("stage1/rootfs")
            ]
        );
        assert_eq!(
            table.of(&Uuid::parse_str(b).unwrap()),
            [PathBuf::from("stage1/rootfs")]
        );
        assert!(table.of(&Uuid::new_v4()).is_empty());
    }
}
