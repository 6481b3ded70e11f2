//! What `rkt list` and `rkt status` report about a pod, and its `v1` JSON form (rkt 1.30
//! api/v1: pod times in seconds, app times in nanoseconds).
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aci::schema::{ImageManifest, PodManifest};
use serde::Serialize;

use super::{Pod, PodState};
use crate::contract::{
    APPS_INFO, NET_INFO, OVERLAY_DIR, PID_FILE, POD_CREATED, POD_MANIFEST, PPID_FILE,
    STAGE1_ROOTFS, STAGE1_TREE_ID, STATUS_DIR,
};

/// A stat time in nanoseconds since the epoch.
fn mtime_nanos(path: &Path) -> Option<i64> {
    let m = std::fs::metadata(path).ok()?;
    Some(m.mtime() * 1_000_000_000 + m.mtime_nsec())
}

fn ctime_nanos(path: &Path) -> Option<i64> {
    let m = std::fs::metadata(path).ok()?;
    Some(m.ctime() * 1_000_000_000 + m.ctime_nsec())
}

impl Pod {
    /// The pod manifest, once prepared.
    pub fn manifest(&self) -> Option<PodManifest> {
        let bytes = std::fs::read(self.path().join(POD_MANIFEST)).ok()?;
        PodManifest::from_slice(&bytes).ok()
    }

    /// Creation time (mtime of `pod-created`, else `pod`); none while preparing.
    pub fn created(&self) -> Option<i64> {
        if matches!(
            self.state(),
            PodState::Embryo | PodState::Preparing | PodState::AbortedPrepare
        ) {
            return None;
        }
        let dir = self.path();
        mtime_nanos(&dir.join(POD_CREATED)).or_else(|| mtime_nanos(&dir.join(POD_MANIFEST)))
    }

    /// Start time: mtime of `pid` (or `ppid`) written by stage1.
    pub fn started(&self) -> Option<i64> {
        let dir = self.path();
        mtime_nanos(&dir.join(PID_FILE)).or_else(|| mtime_nanos(&dir.join(PPID_FILE)))
    }

    /// PID 1 of the pod (or its parent), when stage1 recorded one.
    pub fn pid(&self) -> Option<i32> {
        let dir = self.path();
        [PID_FILE, PPID_FILE].iter().find_map(|f| {
            std::fs::read_to_string(dir.join(f))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })
    }

    /// When gc marked the pod (ctime of its directory once moved to a garbage state).
    pub fn gc_marked(&self) -> Option<i64> {
        matches!(
            self.state(),
            PodState::ExitedGarbage
                | PodState::ExitedDeleting
                | PodState::Garbage
                | PodState::Deleting
        )
        .then(|| ctime_nanos(&self.path()))
        .flatten()
    }

    /// The root where stage1's files are: its overlay while mounted (or its copy), else the
    /// overlay's upper directory.
    fn stage1_root(&self) -> Option<PathBuf> {
        let dir = self.path();
        let mounted = dir.join(STAGE1_ROOTFS);
        if mounted.join("rkt").symlink_metadata().is_ok() {
            return Some(mounted);
        }
        let tree = std::fs::read_to_string(dir.join(STAGE1_TREE_ID)).ok()?;
        let upper = dir.join(OVERLAY_DIR).join(tree.trim()).join("upper");
        upper.is_dir().then_some(upper)
    }

    /// Reads a small file stage1 wrote inside its root. The pod can write there, so the path
    /// is resolved inside that root and only a regular file of at most `max` bytes is read.
    pub fn read_stage1_file(&self, rel: &str, max: u64) -> Option<Vec<u8>> {
        aci::rootfs::read_in_root(&self.stage1_root()?, rel, max).ok()
    }

    /// The target of a symlink stage1 wrote inside its root (never followed).
    pub fn read_stage1_link(&self, rel: &str) -> Option<PathBuf> {
        let root = self.stage1_root()?;
        let parent = Path::new(rel)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = aci::rootfs::resolve_in_root(&root, &parent).ok()?;
        std::fs::read_link(dir.join(Path::new(rel).file_name()?)).ok()
    }

    /// An app's exit status, once recorded by stage1.
    pub fn app_exit_code(&self, app: &str) -> Option<i32> {
        let bytes = self.read_stage1_file(&format!("{STATUS_DIR}/{app}"), 64)?;
        String::from_utf8_lossy(&bytes).trim().parse().ok()
    }

    /// The networks stage1 attached (`net-info.json`), for running and exited pods as rkt
    /// showed them (docs/stage-contract.md, "Networking"). None with `--net=host|none`.
    pub fn networks(&self) -> Vec<V1Net> {
        if !matches!(self.state(), PodState::Running | PodState::Exited) {
            return Vec::new();
        }
        let path = self.path().join(NET_INFO);
        let Ok(file) = std::fs::File::open(&path) else {
            return Vec::new();
        };
        use std::io::Read;
        let mut bytes = Vec::new();
        // stage1 writes a few hundred bytes per network.
        if file.take(1 << 20).read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        serde_json::from_slice::<Option<Vec<V1Net>>>(&bytes)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// An app's image manifest as recorded at prepare time.
    pub fn app_image_manifest(&self, app: &str) -> Option<ImageManifest> {
        let bytes = std::fs::read(self.path().join(APPS_INFO).join(app).join("manifest")).ok()?;
        ImageManifest::from_slice(&bytes).ok()
    }
}

/// One network of a pod, with rkt's field names (rkt's `netinfo.NetInfo`).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct V1Net {
    #[serde(rename = "netName", default)]
    pub net_name: String,
    #[serde(rename = "netConf", default)]
    pub net_conf: String,
    #[serde(rename = "pluginPath", default)]
    pub plugin_path: String,
    #[serde(rename = "ifName", default)]
    pub if_name: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub args: String,
    #[serde(default)]
    pub mask: String,
}

/// `name:ip4=a.b.c.d` for each network, comma-separated: the NETWORKS column and `networks=`.
pub fn networks_text(nets: &[V1Net]) -> String {
    nets.iter()
        .map(|n| format!("{}:ip4={}", n.net_name, n.ip))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Serialize)]
pub struct V1Mount {
    pub name: String,
    pub container_path: String,
    pub host_path: String,
    pub read_only: bool,
}

#[derive(Debug, Serialize)]
pub struct V1App {
    pub name: String,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub image_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<V1Mount>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct V1Pod {
    pub name: String,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<V1Net>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub app_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<V1App>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
}

fn app_state(state: PodState) -> &'static str {
    match state {
        PodState::Embryo | PodState::Preparing | PodState::AbortedPrepare => "unknown",
        PodState::Prepared => "created",
        PodState::Running => "running",
        _ => "exited",
    }
}

/// The v1 form of a pod (as `rkt list --format=json` and `rkt status --format=json`).
pub fn v1_pod(pod: &Pod) -> V1Pod {
    let manifest = pod.manifest();
    let created = pod.created();
    let started = pod.started();
    let finished = pod.gc_marked();
    let mut apps = Vec::new();
    if let Some(m) = &manifest {
        for ra in &m.apps {
            let exit_code = pod.app_exit_code(&ra.name);
            let mounts = ra
                .mounts
                .iter()
                .map(|mnt| {
                    let vol = mnt
                        .app_volume
                        .as_ref()
                        .or_else(|| m.volumes.iter().find(|v| v.name == mnt.volume));
                    V1Mount {
                        name: mnt.volume.clone(),
                        container_path: mnt.path.clone(),
                        host_path: vol.and_then(|v| v.source.clone()).unwrap_or_default(),
                        read_only: vol.and_then(|v| v.read_only).unwrap_or(false),
                    }
                })
                .collect();
            let section = ra.app.clone().unwrap_or_default();
            apps.push(V1App {
                name: ra.name.clone(),
                state: if exit_code.is_some() {
                    "exited"
                } else {
                    app_state(pod.state())
                },
                created_at: created,
                started_at: started,
                finished_at: finished,
                exit_code,
                image_id: ra.image.id.clone(),
                mounts,
                user_annotations: section.user_annotations,
                user_labels: section.user_labels,
            });
        }
    }
    V1Pod {
        name: pod.uuid.to_string(),
        state: pod.state().as_str(),
        networks: pod.networks(),
        app_names: manifest
            .as_ref()
            .map(|m| m.apps.iter().map(|a| a.name.clone()).collect())
            .unwrap_or_default(),
        apps,
        created_at: created.map(|n| n / 1_000_000_000),
        started_at: started.map(|n| n / 1_000_000_000),
        user_annotations: manifest
            .as_ref()
            .map(|m| m.user_annotations.clone())
            .unwrap_or_default(),
        user_labels: manifest
            .as_ref()
            .map(|m| m.user_labels.clone())
            .unwrap_or_default(),
    }
}
