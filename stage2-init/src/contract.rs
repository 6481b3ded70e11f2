//! Every path, file name, plan keyword and exit code that couples stage2-init to stage1 and
//! stage0, named once.
//!
//! The pod-side paths follow the rkt stage1 contract (docs/stage-contract.md, and upstream
//! `Documentation/devel/stage1-implementors-guide.md`): stage0 reads `rkt/status/<app>` and
//! `rkt/supervisor-status`, relative to the stage1 root, which is stage2-init's own `/`.

/// Where stage1 writes the plan; the first argument of `/stage2-init` (informational only:
/// stage1 always passes the path explicitly).
pub const DEFAULT_PLAN_PATH: &str = "/rkt/run/init-plan";

/// The `rkt` directory of the stage1 root. A test outside a pod overrides it with the
/// pod-level plan directive [`plan_key::RKT_DIR`].
pub const DEFAULT_RKT_DIR: &str = "/rkt";

/// `<rkt-dir>/status/<app>`: the app's exit status, decimal, no trailing newline.
pub const STATUS_DIR: &str = "status";

/// `<rkt-dir>/supervisor-status`: a symlink to [`SUPERVISOR_READY`] once every app was started
/// (`rkt status --wait-ready` polls it).
pub const SUPERVISOR_STATUS: &str = "supervisor-status";

/// `<rkt-dir>/enter.sock`: where stage2-init takes `rkt enter` requests (protocol in
/// `enter.rs`). The stage1 `enter` entrypoint connects to it from the host.
pub const ENTER_SOCKET: &str = "enter.sock";

/// The first field of every enter request.
pub const ENTER_MAGIC: &str = "rkt-enter-v1";

/// Target of the [`SUPERVISOR_STATUS`] symlink.
pub const SUPERVISOR_READY: &str = "ready";

/// Our own failures: bad plan, setup error, or an app that could not be started (rkt uses 254
/// for every stage0/stage1 setup failure, docs/stage-contract.md, "Exit policy").
pub const EXIT_SETUP_FAILURE: i32 = 254;

/// Grace period between SIGTERM and SIGKILL when the pod stops, unless the plan says otherwise.
pub const DEFAULT_STOP_TIMEOUT_SECS: u32 = 10;

/// The first field of every plan file.
pub const PLAN_MAGIC: &str = "rkt-stage2-plan-v1";

/// The keys of the plan file; the format is described in `plan.rs`.
pub mod plan_key {
    // Pod level: only before the first `app`.
    pub const STOP_TIMEOUT: &str = "stop-timeout";
    pub const INTERACTIVE: &str = "interactive";
    pub const VERBOSE: &str = "verbose";
    pub const RKT_DIR: &str = "rkt-dir";
    // Starts an app block.
    pub const APP: &str = "app";
    // App level.
    pub const ROOT: &str = "root";
    pub const UID: &str = "uid";
    pub const GID: &str = "gid";
    pub const GROUPS: &str = "groups";
    pub const CWD: &str = "cwd";
    pub const ENV: &str = "env";
    pub const EXEC: &str = "exec";
    pub const PRE_START: &str = "pre-start";
    pub const POST_STOP: &str = "post-stop";
    pub const CAPS: &str = "caps";
    pub const CGROUP_FDS: &str = "cgroup-fds";
    pub const CGROUP_V2: &str = "cgroup-v2";
    pub const OOM_SCORE_ADJ: &str = "oom-score-adj";
    pub const NO_NEW_PRIVILEGES: &str = "no-new-privileges";
    pub const SECCOMP: &str = "seccomp";
}
