//! The stage0 → stage1 → stage2 contract as stage1 sees it (docs/stage-contract.md).
//! Paths are relative to the pod directory, which is stage1's working directory.

/// Pod manifest written by stage0.
pub const POD_MANIFEST: &str = "pod";
/// stage1's own root filesystem (overlay or copy), prepared by stage0.
pub const STAGE1_ROOTFS: &str = "stage1/rootfs";
/// Apps inside the stage1 root: `opt/stage2/<app>/rootfs`.
pub const STAGE2_DIR: &str = "opt/stage2";
/// Inside the stage1 root: exit statuses, environment files, readiness.
pub const STATUS_DIR: &str = "rkt/status";
/// Inside the stage1 root: a tmpfs of the pod's PID 1 (docs/stage-contract.md, "Runtime
/// files") with what only the running pod needs: the plan, the apps' environments and seccomp
/// programs, the pod's hostname and default hosts file. Nothing of it reaches the disk.
pub const RUNTIME_DIR: &str = "rkt/run";
pub const ENV_DIR: &str = "rkt/run/env";
pub const SECCOMP_DIR: &str = "rkt/run/seccomp";
pub const POD_HOSTNAME: &str = "rkt/run/hostname";
pub const POD_HOSTS: &str = "rkt/run/hosts";
/// Written by stage0: the id of the stage1 image's rendered tree in the store, and the marker
/// of a pod whose roots are overlays of the store's trees (not copies).
pub const STAGE1_TREE_ID: &str = "stage1TreeStoreID";
pub const OVERLAY_PREPARED: &str = "overlay-prepared";
/// Written by stage1 in the pod directory once PID 1 of the pod runs: `"<pid>\n"`.
pub const PID_FILE: &str = "pid";
/// Backing directories of empty volumes, in the pod directory (removed with the pod).
pub const SHARED_VOLUMES: &str = "sharedVolumes";
/// Name resolution files: stage0 may write the `rkt-` ones into the stage1 root (§6.6).
pub const RKT_RESOLV_CONF: &str = "etc/rkt-resolv.conf";
pub const RKT_HOSTS: &str = "etc/rkt-hosts";
/// The locked pod directory descriptor stage0 hands over; it must stay open for the pod's life.
pub const LOCK_FD_ENV: &str = "RKT_LOCK_FD";

/// Our PID 1 inside the stage1 root, and the plan stage1 writes for it
/// (format: stage2-init/src/plan.rs).
pub const STAGE2_INIT: &str = "/stage2-init";
/// stage2-init's socket for `rkt enter` requests, inside the stage1 root, and the first field
/// of every request (docs/stage-contract.md, "rkt enter").
pub const ENTER_SOCKET: &str = "rkt/enter.sock";
pub const ENTER_MAGIC: &str = "rkt-enter-v1";
pub const INIT_PLAN: &str = "rkt/run/init-plan";
pub const PLAN_MAGIC: &str = "rkt-stage2-plan-v1";

/// appc's default search path and the defaults rkt fills into every app's environment.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DEFAULT_ENV: [(&str, &str); 5] = [
    ("PATH", DEFAULT_PATH),
    ("SHELL", "/bin/sh"),
    ("USER", "root"),
    ("LOGNAME", "root"),
    ("HOME", "/root"),
];

/// Seconds between SIGTERM and SIGKILL when the pod stops.
pub const STOP_TIMEOUT_SECS: u32 = 10;

/// Networking records in the pod directory (docs/stage-contract.md, "Networking"): the path
/// of the pod's network namespace, the networks attached, the copies of their confs, and a
/// marker that ports were forwarded.
pub const NETNS_FILE: &str = "netns";
pub const NET_INFO: &str = "net-info.json";
pub const NET_DIR: &str = "net";
pub const PORT_FORWARDING: &str = "net/port-forwarding";
/// Where named network namespaces are bound, as `ip netns` does.
pub const NETNS_DIR: &str = "/var/run/netns";
