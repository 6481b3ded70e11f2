//! Names shared with stage1 through the pod directory and the stage1 image (docs/stage-contract.md).
//! Every stage names these once; this is stage0's copy.

/// Pod manifest written by stage0.
pub const POD_MANIFEST: &str = "pod";
/// Empty lock file for mutations of the pod manifest.
pub const POD_LOCK_FILE: &str = "pod.lck";
/// Empty file whose mtime is the pod's creation time.
pub const POD_CREATED: &str = "pod-created";
/// Tree id of the stage1 image.
pub const STAGE1_TREE_ID: &str = "stage1TreeStoreID";
/// Marker: the pod was prepared for overlay mounts.
pub const OVERLAY_PREPARED: &str = "overlay-prepared";
/// `SHIFT:COUNT` of the pod's user namespace, as rkt wrote it (`--private-users`).
pub const PRIVATE_USERS_PREPARED: &str = "private-users-prepared";
/// Per-app image manifests and tree ids: `appsinfo/<app>/{manifest,treeStoreID}`.
pub const APPS_INFO: &str = "appsinfo";
pub const APP_TREE_ID: &str = "treeStoreID";
/// Upper and work directories of overlays: `overlay/<tree id>/{upper,work}[/<app>]`.
pub const OVERLAY_DIR: &str = "overlay";
/// The stage1 image: `stage1/manifest` and `stage1/rootfs`.
pub const STAGE1_MANIFEST: &str = "stage1/manifest";
pub const STAGE1_ROOTFS: &str = "stage1/rootfs";
/// Apps inside the stage1 root: `opt/stage2/<app>/{manifest,rootfs}`.
pub const STAGE2_DIR: &str = "opt/stage2";
/// Written by stage1 inside its root: exit statuses, environments, readiness.
pub const STATUS_DIR: &str = "rkt/status";
pub const SUPERVISOR_STATUS: &str = "rkt/supervisor-status";
/// Written by stage1 in the pod directory: PID 1 of the pod, or its parent.
pub const PID_FILE: &str = "pid";
pub const PPID_FILE: &str = "ppid";
/// Written by stage1 in the pod directory: the networks attached (docs/stage-contract.md,
/// "Networking").
pub const NET_INFO: &str = "net-info.json";
/// Name resolution files stage0 writes into the stage1 root (§6.6).
pub const RKT_RESOLV_CONF: &str = "etc/rkt-resolv.conf";
pub const RKT_HOSTS: &str = "etc/rkt-hosts";
/// The stage1 image's default hosts file, where `etc/rkt-hosts` starts.
pub const HOSTS_FALLBACK: &str = "etc/hosts-fallback";

/// Environment variable carrying the locked pod directory descriptor to stage1.
pub const LOCK_FD_ENV: &str = "RKT_LOCK_FD";

/// Stage1 manifest annotations naming its entrypoints, relative to its rootfs.
pub const ANN_RUN: &str = "coreos.com/rkt/stage1/run";
pub const ANN_ENTER: &str = "coreos.com/rkt/stage1/enter";
pub const ANN_GC: &str = "coreos.com/rkt/stage1/gc";
pub const ANN_STOP: &str = "coreos.com/rkt/stage1/stop";
pub const ANN_INTERFACE_VERSION: &str = "coreos.com/rkt/stage1/interface-version";
/// Pod manifest annotation rkt writes on immutable pods.
pub const ANN_MUTABLE: &str = "coreos.com/rkt/stage1/mutable";

pub const DEFAULT_STAGE1_FILE: &str = "stage1.aci";

/// Marker: the pod was registered with the metadata service; gc deregisters it.
pub const MDS_REGISTERED: &str = "mds-registered";
/// The metadata service's port when it is not 18112, for stage1's `AC_METADATA_URL`.
pub const MDS_PORT: &str = "mds-port";

/// Where stage1 binds pods' network namespaces (`cni-<uuid>`), as `ip netns` does; shared
/// between the host's mount namespace and the pod's (docs/stage-contract.md, "Mount namespace").
pub const NETNS_DIR: &str = "/var/run/netns";
