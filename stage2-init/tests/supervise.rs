//! Runs the built stage2-init (not as PID 1: it makes itself a child subreaper) on app roots
//! holding a static busybox, and checks statuses, exit codes, readiness and signal handling.
//!
//! Needs root (chroot, unshare, setuid) and /bin/busybox (static). Without them each test
//! prints `SKIP <name>: needs <what>`, and fails under `CI=true`.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &["sh", "sleep", "id", "pwd", "echo", "cat", "test", "true"];
/// Generous: only a hang should ever reach it.
const DEADLINE: Duration = Duration::from_secs(30);

/// Whether the test can run: root, /bin/busybox and `extra`. Prints `SKIP <name>: needs …`
/// when something is missing, or panics under `CI=true`.
fn requires(name: &str, extra: &[(&str, bool)]) -> bool {
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
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("stage2-init-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("rkt")).expect("create test dir");
        Self(dir)
    }

    fn rkt(&self) -> PathBuf {
        self.0.join("rkt")
    }

    /// `<dir>/<app>/rootfs` with busybox, its applets in /bin, /dev/null and a world-writable /out.
    fn app_root(&self, app: &str) -> PathBuf {
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

    fn status(&self, app: &str) -> String {
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
struct PlanWriter(Vec<String>);

impl PlanWriter {
    fn new(rkt_dir: &Path, stop_timeout: u32) -> Self {
        let fields = ["rkt-stage2-plan-v1", "rkt-dir"];
        let mut plan = Self(fields.map(str::to_owned).to_vec());
        plan.0
            .push(rkt_dir.to_str().expect("utf-8 path").to_owned());
        plan.field("stop-timeout").field(&stop_timeout.to_string())
    }

    fn field(mut self, value: &str) -> Self {
        self.0.push(value.to_owned());
        self
    }

    /// `key COUNT items…`
    fn list(self, key: &str, items: &[&str]) -> Self {
        let plan = self.field(key).field(&items.len().to_string());
        items.iter().fold(plan, |plan, item| plan.field(item))
    }

    /// Starts an app block; the caller adds uid, gid, cwd, env, exec.
    fn app(self, name: &str, root: &Path) -> Self {
        let root = root.to_str().expect("utf-8 path");
        self.field("app").field(name).field("root").field(root)
    }

    /// An app running as root in `/` with `PATH=/bin`.
    fn simple_app(self, name: &str, root: &Path, exec: &[&str]) -> Self {
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

    fn write(&self, dir: &TestDir) -> PathBuf {
        let path = dir.0.join("init-plan");
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
struct Init {
    child: Child,
    stderr: PathBuf,
    started: Instant,
}

impl Init {
    fn start(dir: &TestDir, plan: &PlanWriter) -> Self {
        let plan = plan.write(dir);
        // A file, not a pipe: a leaked app holding the pipe open would block the read.
        let stderr = dir.0.join("stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_stage2-init"))
            .arg(plan)
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

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new(BUSYBOX)
            .args(["kill", "-s", name, &pid])
            .status()
            .expect("run busybox kill");
        assert!(status.success(), "kill -s {name} {pid}");
    }

    /// Waits for the exit; returns its status, the time since start and stderr.
    fn wait(&mut self) -> (ExitStatus, Duration, String) {
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
fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}

fn assert_ready(dir: &TestDir) {
    let link = dir.rkt().join("supervisor-status");
    let target = fs::read_link(&link).expect("supervisor-status is a symlink");
    assert_eq!(target, Path::new("ready"));
}

#[test]
fn failing_app_stops_the_pod_and_sets_the_exit_code() {
    let name = "failing_app_stops_the_pod_and_sets_the_exit_code";
    if !requires(name, &[]) {
        return;
    }
    let dir = TestDir::new("policy");
    let plan = PlanWriter::new(&dir.rkt(), 2)
        .simple_app("ok", &dir.app_root("ok"), &["/bin/sh", "-c", "exit 0"])
        .simple_app("fail", &dir.app_root("fail"), &["/bin/sh", "-c", "exit 5"])
        .simple_app("slow", &dir.app_root("slow"), &["/bin/sleep", "30"]);
    let (status, elapsed, stderr) = Init::start(&dir, &plan).wait();
    assert_eq!(status.code(), Some(5), "stderr: {stderr}");
    assert_eq!(dir.status("ok"), "0");
    assert_eq!(dir.status("fail"), "5");
    assert_eq!(
        dir.status("slow"),
        "0",
        "killed by the stop counts as success"
    );
    // SIGTERM ends `sleep` at once; the 30 s sleep must not have run out.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert_ready(&dir);
    assert!(
        stderr.contains("stage2-init: app fail failed with status 5; stopping the pod"),
        "{stderr}"
    );
}

#[test]
fn sigterm_stops_the_pod_gracefully() {
    if !requires("sigterm_stops_the_pod_gracefully", &[]) {
        return;
    }
    let dir = TestDir::new("sigterm");
    let plan = PlanWriter::new(&dir.rkt(), 10).simple_app(
        "sleeper",
        &dir.app_root("sleeper"),
        &["/bin/sleep", "30"],
    );
    let mut init = Init::start(&dir, &plan);
    // Ready means the app's execve succeeded, so the signal reaches `sleep` itself.
    let link = dir.rkt().join("supervisor-status");
    wait_until("supervisor-status", || fs::read_link(&link).ok());
    init.signal("TERM");
    let (status, elapsed, stderr) = init.wait();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(dir.status("sleeper"), "0");
    // Well under the 10 s stop timeout: the forwarded SIGTERM did it, not SIGKILL.
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    assert!(
        stderr.contains("stage2-init: received SIGTERM; stopping the pod"),
        "{stderr}"
    );
}

#[test]
fn stop_timeout_kills_an_app_ignoring_sigterm() {
    if !requires("stop_timeout_kills_an_app_ignoring_sigterm", &[]) {
        return;
    }
    let dir = TestDir::new("escalate");
    let root = dir.app_root("stubborn");
    // `sleep` inherits the ignored SIGTERM from the shell.
    let script = "trap '' TERM; echo > /out/trapped; sleep 30";
    let plan =
        PlanWriter::new(&dir.rkt(), 1).simple_app("stubborn", &root, &["/bin/sh", "-c", script]);
    let mut init = Init::start(&dir, &plan);
    let trapped = root.join("out/trapped");
    wait_until("the app to ignore SIGTERM", || {
        trapped.exists().then_some(())
    });
    let signalled = Instant::now();
    init.signal("TERM");
    let (status, _, stderr) = init.wait();
    let elapsed = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(
        dir.status("stubborn"),
        "0",
        "killed by our stop counts as success"
    );
    assert!(
        elapsed >= Duration::from_secs(1),
        "SIGKILL before the timeout: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(stderr.contains("killing them"), "{stderr}");
}

#[test]
fn orphans_are_reparented_and_reaped() {
    let own_children = format!("/proc/{0}/task/{0}/children", std::process::id());
    let children_file = (
        "/proc/<pid>/task/<tid>/children",
        Path::new(&own_children).exists(),
    );
    if !requires("orphans_are_reparented_and_reaped", &[children_file]) {
        return;
    }
    let dir = TestDir::new("orphans");
    let root = dir.app_root("parent");
    // The subshell outlives `sh`, so it is re-parented to stage2-init, its subreaper; it
    // waits for the test's go-ahead before ending.
    let script = "(while ! test -e /out/go; do sleep 0.05; done; echo > /out/orphan-done) & exit 0";
    let plan = PlanWriter::new(&dir.rkt(), 10)
        .simple_app("parent", &root, &["/bin/sh", "-c", script])
        .simple_app("keeper", &dir.app_root("keeper"), &["/bin/sleep", "30"]);
    let mut init = Init::start(&dir, &plan);
    let pid = init.child.id();
    let children = PathBuf::from(format!("/proc/{pid}/task/{pid}/children"));
    let count_children = || {
        let list = fs::read_to_string(&children).expect("read children");
        list.split_whitespace().count()
    };
    let parent_status = dir.rkt().join("status/parent");
    // `sh` was reaped (its status is written), yet stage2-init has the keeper and the orphan.
    wait_until("the orphan to be re-parented", || {
        (parent_status.exists() && count_children() == 2).then_some(())
    });
    assert_eq!(dir.status("parent"), "0");
    fs::write(root.join("out/go"), "").expect("let the orphan end");
    // A zombie stays in the list until reaped: only the keeper may remain.
    let orphan_done = root.join("out/orphan-done");
    wait_until("the orphan to be reaped", || {
        (orphan_done.exists() && count_children() == 1).then_some(())
    });
    init.signal("TERM");
    let (status, _, stderr) = init.wait();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(dir.status("keeper"), "0");
}

#[test]
fn env_cwd_and_credentials_reach_the_app_and_handlers_run_as_root_around_it() {
    let name = "env_cwd_and_credentials_reach_the_app_and_handlers_run_as_root_around_it";
    if !requires(name, &[]) {
        return;
    }
    let dir = TestDir::new("identity");
    let root = dir.app_root("web");
    fs::create_dir(root.join("srv")).expect("mkdir /srv");
    // Shared by the root handlers and the unprivileged app.
    let log = root.join("out/log");
    fs::write(&log, "").expect("create log");
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).expect("chmod log");
    let record = |who: &str| {
        format!(r#"echo "{who} $(id -u) $(id -g) [$(id -G)] $(pwd) $GREETING" >> /out/log"#)
    };
    let plan = PlanWriter::new(&dir.rkt(), 2)
        .app("web", &root)
        .field("uid")
        .field("1234")
        .field("gid")
        .field("2345")
        .list("groups", &["7", "8"])
        .field("cwd")
        .field("/srv")
        .list("env", &["PATH=/bin", "GREETING=hello  world"])
        .list("pre-start", &["/bin/sh", "-c", &record("pre-start-1")])
        .list("pre-start", &["/bin/sh", "-c", &record("pre-start-2")])
        .list("exec", &["/bin/sh", "-c", &record("app")])
        .list("post-stop", &["/bin/sh", "-c", &record("post-stop")]);
    let (status, _, stderr) = Init::start(&dir, &plan).wait();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(dir.status("web"), "0");
    assert_eq!(
        fs::read_to_string(&log).expect("read log"),
        "pre-start-1 0 0 [0] /srv hello  world\n\
         pre-start-2 0 0 [0] /srv hello  world\n\
         app 1234 2345 [2345 7 8] /srv hello  world\n\
         post-stop 0 0 [0] /srv hello  world\n"
    );
    assert_eq!(stderr, "");
}

#[test]
fn failing_pre_start_fails_the_app_but_post_stop_still_runs() {
    let name = "failing_pre_start_fails_the_app_but_post_stop_still_runs";
    if !requires(name, &[]) {
        return;
    }
    let dir = TestDir::new("prestart");
    let root = dir.app_root("web");
    let plan = PlanWriter::new(&dir.rkt(), 2)
        .simple_app("web", &root, &["/bin/sh", "-c", "echo > /out/app-ran"])
        .list("pre-start", &["/bin/sh", "-c", "exit 7"])
        .list("post-stop", &["/bin/sh", "-c", "echo > /out/post-stop-ran"]);
    let (status, _, stderr) = Init::start(&dir, &plan).wait();
    assert_eq!(status.code(), Some(7), "stderr: {stderr}");
    assert_eq!(dir.status("web"), "7");
    assert!(!root.join("out/app-ran").exists(), "the app must not start");
    assert!(
        root.join("out/post-stop-ran").exists(),
        "post-stop must run"
    );
    assert!(
        stderr.contains("stage2-init: app web: pre-start handler 0 (/bin/sh) exited with status 7"),
        "{stderr}"
    );
}

#[test]
fn missing_executable_is_reported_and_recorded_as_254() {
    if !requires("missing_executable_is_reported_and_recorded_as_254", &[]) {
        return;
    }
    let dir = TestDir::new("noexec");
    let plan = PlanWriter::new(&dir.rkt(), 2)
        .simple_app("ghost", &dir.app_root("ghost"), &["/bin/nonexistent"])
        .simple_app("slow", &dir.app_root("slow"), &["/bin/sleep", "30"]);
    let (status, elapsed, stderr) = Init::start(&dir, &plan).wait();
    assert_eq!(status.code(), Some(254), "stderr: {stderr}");
    assert_eq!(dir.status("ghost"), "254");
    assert_eq!(dir.status("slow"), "0");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let line = "stage2-init: app ghost: execve /bin/nonexistent: No such file or directory\n";
    assert!(stderr.starts_with(line), "{stderr}");
    assert_ready(&dir);
}

#[test]
fn bad_plan_starts_nothing_and_exits_254() {
    // Needs no privileges: the plan is rejected before anything starts.
    let dir = TestDir::new("badplan");
    let plan = PlanWriter::new(&dir.rkt(), 2).field("bogus");
    let (status, _, stderr) = Init::start(&dir, &plan).wait();
    assert_eq!(status.code(), Some(254));
    let expected = format!(
        "stage2-init: bad plan {}: unknown key \"bogus\" at field 6\n",
        dir.0.join("init-plan").display()
    );
    assert_eq!(stderr, expected);
    assert!(!dir.rkt().join("status").exists());
}
