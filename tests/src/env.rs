//! A private rkt data directory per test, and running the real binaries against it.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Directory of the built release binaries (`make` puts rkt and stage1.aci there).
pub fn release_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("RKT_RELEASE_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release")
}

pub fn rkt_bin() -> PathBuf {
    release_dir().join("rkt")
}

pub fn stage1_aci() -> PathBuf {
    release_dir().join("stage1.aci")
}

/// The static `pod-attack` binary that hostile test images carry (`make attack`).
pub fn attack_bin() -> PathBuf {
    if let Ok(path) = std::env::var("RKT_POD_ATTACK") {
        return PathBuf::from(path);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-gnu/release/pod-attack")
}

/// The newest modification time among the sources of `crates`.
fn newest_source(crates: &[&str]) -> (std::time::SystemTime, PathBuf) {
    fn walk(dir: &Path, newest: &mut (std::time::SystemTime, PathBuf)) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            // Test-only files do not make cargo relink the binaries: leave them out.
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let test_only = name == "tests" || name == "tests.rs" || name.ends_with("_tests.rs");
            if test_only {
                continue;
            }
            if meta.is_dir() {
                walk(&path, newest);
            } else if path
                .extension()
                .is_some_and(|e| e == "rs" || e == "toml" || e == "in")
            {
                if let Ok(modified) = meta.modified() {
                    if modified > newest.0 {
                        *newest = (modified, path);
                    }
                }
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut newest = (std::time::SystemTime::UNIX_EPOCH, PathBuf::new());
    for krate in crates {
        walk(&root.join(krate), &mut newest);
    }
    newest
}

/// Tests must never pass or fail because of a previous build: every binary they run must be
/// newer than every source it is built from (`cargo test` alone does not rebuild them).
fn check_binaries_are_fresh() {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let verdict = CHECKED.get_or_init(|| {
        if std::env::var_os("RKT_RELEASE_DIR").is_some() {
            return Ok(()); // deliberately testing other binaries
        }
        for (binary, crates) in [
            (rkt_bin(), &["aci", "store", "stage0"][..]),
            (stage1_aci(), &["aci", "stage1", "stage2-init"][..]),
            (attack_bin(), &["tests/attack"][..]),
        ] {
            let (newest, source) = newest_source(crates);
            let built = std::fs::metadata(&binary)
                .and_then(|m| m.modified())
                .map_err(|e| format!("{}: {e}: run `make build attack` first", binary.display()))?;
            if built < newest {
                return Err(format!(
                    "{} is older than {}: run `make build attack` (or `make test`) so the tests run what the sources say",
                    binary.display(),
                    source.display()
                ));
            }
        }
        Ok(())
    });
    if let Err(why) = verdict {
        panic!("{why}");
    }
}

/// Privileged tests need root. Without it they print SKIP, except under CI=true where a
/// skipped test is a failure.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("SKIP {test}: needs root (not allowed under CI=true)");
        }
        eprintln!("SKIP {test}: needs root");
        return false;
    }
    assert!(
        rkt_bin().exists(),
        "{} missing: run `make` first",
        rkt_bin().display()
    );
    assert!(
        stage1_aci().exists(),
        "{} missing: run `make` first",
        stage1_aci().display()
    );
    check_binaries_are_fresh();
    true
}

/// What a finished command produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` to its end.
    pub fn of(cmd: &mut Command) -> Run {
        Run::from(cmd.output().expect("spawn"))
    }

    pub fn from(out: Output) -> Run {
        use std::os::unix::process::ExitStatusExt;
        let code = out
            .status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        Run {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A test's own rkt data directory and scratch space. Dropping it garbage-collects every pod
/// and unmounts anything left under it.
pub struct TestEnv {
    pub tmp: TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let tmp = tempfile::Builder::new()
            .prefix("rkt-test-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("data")).expect("data dir");
        std::fs::create_dir_all(tmp.path().join("work")).expect("work dir");
        TestEnv { tmp }
    }

    /// Like [`TestEnv::new`], on a tmpfs of its own (mounted on the temporary directory,
    /// unmounted last by the guard): for tests whose cost is the filesystem's rather than
    /// rkt's, such as deleting 200,000 directories, which takes minutes on a disk mounted with
    /// `discard` (GNU `rm -rf` as well).
    pub fn on_tmpfs() -> TestEnv {
        let tmp = tempfile::Builder::new()
            .prefix("rkt-test-")
            .tempdir()
            .expect("tempdir");
        let target = std::ffi::CString::new(tmp.path().as_os_str().as_encoded_bytes())
            .expect("temp path without NUL");
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"mode=0700".as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        std::fs::create_dir_all(tmp.path().join("data")).expect("data dir");
        std::fs::create_dir_all(tmp.path().join("work")).expect("work dir");
        TestEnv { tmp }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// Scratch directory for images and files the test makes.
    pub fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    /// `rkt --dir=<data> ARGS...` with the default stage1 next to the binary.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(rkt_bin());
        cmd.arg(format!("--dir={}", self.data_dir().display()));
        cmd.args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn rkt(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("spawn rkt"))
    }

    /// `rkt --insecure-options=image run ...`.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--insecure-options=image", "run"];
        all.extend_from_slice(args);
        self.rkt(&all)
    }

    /// Builds an image into the work directory.
    pub fn image(&self, spec: &crate::ImageSpec, file: &str) -> String {
        spec.build(&self.work(), file).display().to_string()
    }

    /// Fetches an image (unsigned) and returns its short ID.
    pub fn fetch(&self, aci: &str) -> String {
        self.rkt(&["--insecure-options=image", "fetch", aci])
            .ok()
            .trim()
            .to_string()
    }

    /// Mount points under the data directory, from /proc/self/mountinfo.
    pub fn mounts(&self) -> Vec<String> {
        let root = self.tmp.path().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&root))
            .collect()
    }

    /// Waits (10 s at most) for `--uuid-file-save` to have written a whole UUID, and returns it.
    #[track_caller]
    pub fn wait_uuid(path: &Path) -> String {
        let read = || std::fs::read_to_string(path).ok().filter(|s| s.len() == 36);
        assert!(
            TestEnv::wait_for(Duration::from_secs(10), || read().is_some()),
            "no UUID in {}",
            path.display()
        );
        read().expect("bug: checked just above")
    }

    /// Polls `check` every 50 ms until it holds or `timeout` passes.
    pub fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        check()
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Stop whatever still runs, collect every pod, then make sure nothing stays mounted.
        if let Ok(list) = self.cmd(&["list", "--no-legend", "--full"]).output() {
            for line in String::from_utf8_lossy(&list.stdout).lines() {
                if let Some(uuid) = line.split_whitespace().next() {
                    if line.contains("running") {
                        let _ = self.cmd(&["stop", "--force", uuid]).output();
                    }
                }
            }
        }
        TestEnv::wait_for(Duration::from_secs(15), || {
            self.cmd(&["list", "--no-legend"])
                .output()
                .map(|o| !String::from_utf8_lossy(&o.stdout).contains("running"))
                .unwrap_or(true)
        });
        let _ = self
            .cmd(&["gc", "--grace-period=0s", "--expire-prepared=0s"])
            .output();
        let mut mounts = self.mounts();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: a valid C string; MNT_DETACH cannot fail in a way that matters here.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}
