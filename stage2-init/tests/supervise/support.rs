//! Helpers of the supervise tests: test directories, plans in stage2-init's format, a handle on
//! a running stage2-init, and waiting with a deadline.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &["sh", "sleep", "id", "pwd", "echo", "cat", "test", "true"];
pub const STAGE2_INIT: &str = env!("CARGO_BIN_EXE_stage2-init");
/// The number of CAP_SYS_PTRACE.
pub const CAP_SYS_PTRACE: u32 = 19;
/// Generous: only a hang should ever reach it.
const DEADLINE: Duration = Duration::from_secs(30);

/// Whether the test can run: root, /bin/busybox and `extra`. Prints `SKIP <name>: needs …`
/// when something is missing, or panics under `CI=true`.
pub fn requires(name: &str, extra: &[(&str, bool)]) -> bool {
    let root = fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0);
    let basics = [("root", root), (BUSYBOX, Path::new(BUSYBOX).is_file())];
    let missing: Vec<&str> = basics
        .iter()
        .chain(extra)
        .filter(|(_, present)| !present)
        .map(|(what, _)| *what)
        .collect();
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name}: needs {missing} (CI=true does not allow skipping)");
    }
    println!("SKIP {name}: needs {missing}");
    false
}

/// A per-test directory with `rkt/` and app roots, removed on drop.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("stage2-init-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("rkt")).expect("create test dir");
        Self(dir)
    }

    pub fn rkt(&self) -> PathBuf {
        self.0.join("rkt")
    }

    /// `<dir>/<app>/rootfs` with busybox, its applets in /bin, /dev/null and a world-writable /out.
    pub fn app_root(&self, app: &str) -> PathBuf {
        let root = self.0.join(app).join("rootfs");
        fs::create_dir_all(root.join("bin")).expect("create app root");
        fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
        for applet in APPLETS {
            symlink("busybox", root.join("bin").join(applet)).expect("applet symlink");
        }
        // busybox sh reads background jobs' stdin from /dev/null; an empty file will do.
        fs::create_dir(root.join("dev")).expect("create /dev");
        fs::write(root.join("dev/null"), "").expect("create /dev/null");
        fs::create_dir(root.join("out")).expect("create /out");
        fs::set_permissions(root.join("out"), fs::Permissions::from_mode(0o777)).expect("chmod");
        root
    }

    /// `<dir>/out`, world-writable, for apps running with the host's root.
    pub fn host_out(&self) -> PathBuf {
        let out = self.0.join("out");
        if !out.exists() {
            fs::create_dir(&out).expect("create out dir");
            fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).expect("chmod out");
        }
        out
    }

    pub fn status(&self, app: &str) -> String {
        let path = self.rkt().join("status").join(app);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes plans in the binary format of `src/plan.rs`: NUL-terminated fields.
pub struct PlanWriter(Vec<String>);

impl PlanWriter {
    pub fn new(rkt_dir: &Path, stop_timeout: u32) -> Self {
        let fields = ["rkt-stage2-plan-v1", "rkt-dir"];
        let mut plan = Self(fields.map(str::to_owned).to_vec());
        plan.0
            .push(rkt_dir.to_str().expect("utf-8 path").to_owned());
        plan.field("stop-timeout").field(&stop_timeout.to_string())
    }

    pub fn field(mut self, value: &str) -> Self {
        self.0.push(value.to_owned());
        self
    }

    /// `key COUNT items…`
    pub fn list(self, key: &str, items: &[&str]) -> Self {
        let plan = self.field(key).field(&items.len().to_string());
        items.iter().fold(plan, |plan, item| plan.field(item))
    }

    /// Starts an app block; the caller adds uid, gid, cwd, env, exec.
    pub fn app(self, name: &str, root: &Path) -> Self {
        let root = root.to_str().expect("utf-8 path");
        self.field("app").field(name).field("root").field(root)
    }

    /// `verbose 1`: informational lines too. Pod level, so before the first app.
    pub fn verbose(self) -> Self {
        self.field("verbose").field("1")
    }

    /// `caps COUNT n…`
    pub fn caps(self, caps: &[u32]) -> Self {
        let caps: Vec<String> = caps.iter().map(u32::to_string).collect();
        let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
        self.list("caps", &caps)
    }

    /// An app whose root is the host's `/` (so it has /proc and /bin/busybox), running
    /// `/bin/busybox sh -c <script>` as `uid` (also its gid) in `/` with `PATH=/bin`.
    pub fn host_app(self, name: &str, uid: u32, script: &str) -> Self {
        let uid = uid.to_string();
        self.app(name, Path::new("/"))
            .field("uid")
            .field(&uid)
            .field("gid")
            .field(&uid)
            .field("cwd")
            .field("/")
            .list("env", &["PATH=/bin"])
            .list("exec", &[BUSYBOX, "sh", "-c", script])
    }

    /// An app running as root in `/` with `PATH=/bin`.
    pub fn simple_app(self, name: &str, root: &Path, exec: &[&str]) -> Self {
        self.app(name, root)
            .field("uid")
            .field("0")
            .field("gid")
            .field("0")
            .field("cwd")
            .field("/")
            .list("env", &["PATH=/bin"])
            .list("exec", exec)
    }

    pub fn write(&self, dir: &TestDir) -> PathBuf {
        self.write_to(dir.0.join("init-plan"))
    }

    pub fn write_to(&self, path: PathBuf) -> PathBuf {
        let mut bytes = Vec::new();
        for field in &self.0 {
            bytes.extend_from_slice(field.as_bytes());
            bytes.push(0);
        }
        fs::write(&path, bytes).expect("write plan");
        path
    }
}

/// stage2-init running on a plan; stopped on drop if a test bails out early.
pub struct Init {
    pub child: Child,
    stderr: PathBuf,
    started: Instant,
}

impl Init {
    pub fn start(dir: &TestDir, plan: &PlanWriter) -> Self {
        let plan = plan.write(dir);
        let mut command = Command::new(STAGE2_INIT);
        command.arg(plan);
        Self::run(dir, command)
    }

    /// Starts stage2-init with descriptor 7 open on `file` and not close-on-exec, as a careless
    /// parent might: a shell opens it, then execs stage2-init in its place.
    pub fn start_with_fd_7(dir: &TestDir, plan: &PlanWriter, file: &Path) -> Self {
        let plan = plan.write(dir);
        let mut command = Command::new(BUSYBOX);
        command
            .args(["sh", "-c", r#"exec 7<"$1"; exec "$0" "$2""#, STAGE2_INIT])
            .arg(file)
            .arg(plan);
        Self::run(dir, command)
    }

    fn run(dir: &TestDir, mut command: Command) -> Self {
        // A file, not a pipe: a leaked app holding the pipe open would block the read.
        let stderr = dir.0.join("stderr");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).expect("create stderr file"))
            .spawn()
            .expect("start stage2-init");
        Self {
            child,
            stderr,
            started: Instant::now(),
        }
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new(BUSYBOX)
            .args(["kill", "-s", name, &pid])
            .status()
            .expect("run busybox kill");
        assert!(status.success(), "kill -s {name} {pid}");
    }

    /// Waits for the exit; returns its status, the time since start and stderr.
    pub fn wait(&mut self) -> (ExitStatus, Duration, String) {
        let status = wait_until("stage2-init to exit", || {
            self.child.try_wait().expect("try_wait")
        });
        let stderr = fs::read_to_string(&self.stderr).expect("read stderr");
        (status, self.started.elapsed(), stderr)
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal("TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` until it yields a value; panics after [`DEADLINE`].
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}

/// The `Cap*:` lines of a `/proc/<pid>/status`, by name.
pub fn cap_lines(status: &str) -> BTreeMap<String, String> {
    status
        .lines()
        .filter_map(|line| line.split_once(":\t"))
        .filter(|(key, _)| key.starts_with("Cap"))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The kernel's highest capability number; 40 (CAP_CHECKPOINT_RESTORE) if unknown.
pub fn last_cap() -> u32 {
    fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(40)
}

pub fn assert_ready(dir: &TestDir) {
    let link = dir.rkt().join("supervisor-status");
    let target = fs::read_link(&link).expect("supervisor-status is a symlink");
    assert_eq!(target, Path::new("ready"));
}

/// Whether `path` holds a complete listing, ended by a `done` line.
pub fn read_done(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|text| text.ends_with("done\n"))
}
