//! Runs the built stage2-init (not as PID 1: it makes itself a child subreaper) on app roots
//! holding a static busybox, and checks statuses, exit codes, readiness, signal handling,
//! capabilities, descriptors and dumpability. Apps that need /proc run with the host's `/` as
//! their root and write their findings under the test directory.
//!
//! Needs root (chroot, unshare, setuid) and /bin/busybox (static). Without them each test
//! prints `SKIP <name>: needs <what>`, and fails under `CI=true`.

// Not tests/support.rs: Cargo would build that as a test binary of its own.
#[path = "supervise/support.rs"]
mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{
    assert_ready, cap_lines, last_cap, read, read_done, requires, wait_until, Init, PlanWriter,
    TestDir, BUSYBOX, CAP_SYS_PTRACE, STAGE2_INIT,
};

#[test]
fn failing_app_stops_the_pod_and_sets_the_exit_code() {
    let name = "failing_app_stops_the_pod_and_sets_the_exit_code";
    if !requires(name, &[]) {
        return;
    }
    for verbose in [false, true] {
        let dir = TestDir::new(if verbose { "policy-verbose" } else { "policy" });
        let plan = PlanWriter::new(&dir.rkt(), 2);
        let plan = if verbose { plan.verbose() } else { plan };
        let plan = plan
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
        if verbose {
            assert_eq!(
                stderr,
                "stage2-init: app fail failed with status 5; stopping the pod\n"
            );
        } else {
            assert_eq!(stderr, "", "quiet by default: the apps' output only");
        }
    }
}

#[test]
fn sigterm_stops_the_pod_gracefully() {
    if !requires("sigterm_stops_the_pod_gracefully", &[]) {
        return;
    }
    let dir = TestDir::new("sigterm");
    let plan = PlanWriter::new(&dir.rkt(), 10).verbose().simple_app(
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
    let plan = PlanWriter::new(&dir.rkt(), 1).verbose().simple_app(
        "stubborn",
        &root,
        &["/bin/sh", "-c", script],
    );
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
        .verbose()
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
    // A real error, printed without `verbose`; the stop it causes is not.
    let line = "stage2-init: app ghost: execve /bin/nonexistent: No such file or directory\n";
    assert_eq!(stderr, line);
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

#[test]
fn caps_limit_apps_and_their_handlers_and_absent_caps_change_nothing() {
    let name = "caps_limit_apps_and_their_handlers_and_absent_caps_change_nothing";
    let own = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let has_caps = ("Cap* lines in /proc/self/status", own.contains("CapBnd:"));
    if !requires(name, &[has_caps]) {
        return;
    }
    let own = cap_lines(&own);
    let dir = TestDir::new("caps");
    let out = dir.host_out();
    let record = |file: &str| {
        let path = out.join(file);
        format!("busybox cat /proc/self/status > {}", path.display())
    };
    let plan = PlanWriter::new(&dir.rkt(), 2)
        .host_app("limited", 0, &record("limited"))
        .caps(&[0])
        .list(
            "pre-start",
            &[BUSYBOX, "sh", "-c", &record("limited-pre-start")],
        )
        .list(
            "post-stop",
            &[BUSYBOX, "sh", "-c", &record("limited-post-stop")],
        )
        .host_app("unprivileged", 1234, &record("unprivileged"))
        .caps(&[0])
        .host_app("untouched", 0, &record("untouched"));
    let (status, _, stderr) = Init::start(&dir, &plan).wait();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
    let chown_only = "0000000000000001";
    for file in ["limited", "limited-pre-start", "limited-post-stop"] {
        let caps = cap_lines(&read(&out.join(file)));
        // execve recomputes a root process's permitted and effective sets from the bounding
        // set; the inheritable set shows the capset.
        for key in ["CapPrm", "CapEff", "CapBnd", "CapInh"] {
            assert_eq!(caps[key], chown_only, "{file} {key}: {caps:?}");
        }
        assert_eq!(caps["CapAmb"], "0000000000000000", "{file}: {caps:?}");
    }
    let caps = cap_lines(&read(&out.join("unprivileged")));
    assert_eq!(caps["CapBnd"], chown_only, "{caps:?}");
    for key in ["CapPrm", "CapEff", "CapInh", "CapAmb"] {
        assert_eq!(
            caps[key], "0000000000000000",
            "unprivileged {key}: {caps:?}"
        );
    }
    // A root process's sets after execve come from the bounding set, which the app inherits
    // unchanged from this test.
    let caps = cap_lines(&read(&out.join("untouched")));
    for key in ["CapBnd", "CapEff"] {
        assert_eq!(caps[key], own[key], "untouched {key}: {caps:?}");
    }
}

#[test]
fn descriptors_stage2_init_inherits_do_not_reach_apps() {
    if !requires("descriptors_stage2_init_inherits_do_not_reach_apps", &[]) {
        return;
    }
    let dir = TestDir::new("fds");
    let out = dir.host_out();
    let secret = dir.0.join("inherited-secret");
    fs::write(&secret, "not for apps").expect("write secret");
    let fds = out.join("fds");
    let script = format!(
        "busybox ls -l /proc/$$/fd > {0}; echo done >> {0}; \
         while ! busybox test -e {1}; do busybox sleep 0.05; done",
        fds.display(),
        out.join("go").display()
    );
    let plan = PlanWriter::new(&dir.rkt(), 2).host_app("app", 0, &script);
    let mut init = Init::start_with_fd_7(&dir, &plan, &secret);
    // Non-vacuous: stage2-init itself holds the descriptor while the app runs.
    let link = PathBuf::from(format!("/proc/{}/fd/7", init.child.id()));
    wait_until("the app to list its descriptors", || {
        read_done(&fds).then_some(())
    });
    assert_eq!(fs::read_link(&link).ok(), Some(secret.clone()));
    fs::write(out.join("go"), "").expect("let the app end");
    let (status, _, stderr) = init.wait();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let listing = read(&fds);
    assert!(listing.contains(" 0 -> /dev/null"), "{listing}");
    assert!(!listing.contains("inherited-secret"), "{listing}");
}

#[test]
fn stage2_init_is_not_dumpable_but_apps_are() {
    if !requires("stage2_init_is_not_dumpable_but_apps_are", &[]) {
        return;
    }
    // Capabilities alone already keep an app with fewer of them out of stage2-init, so the
    // probe runs under an inner stage2-init with exactly its own capabilities (all but
    // CAP_SYS_PTRACE) and uid: then only dumpability can deny it stage2-init's root
    // directory through /proc (the ptrace access check for /proc/<pid>/root).
    let dir = TestDir::new("dumpable");
    let out = dir.host_out();
    let caps: Vec<u32> = (0..=last_cap()).filter(|c| *c != CAP_SYS_PTRACE).collect();
    let inner_rkt = dir.0.join("inner-rkt");
    fs::create_dir(&inner_rkt).expect("create inner rkt dir");
    let can_read = |what: &str, file: &str| {
        let file = out.join(file);
        format!(
            "if busybox ls /proc/{what}/root/ > /dev/null; \
             then echo readable > {0}; else echo denied > {0}; fi",
            file.display()
        )
    };
    // The parent is the inner stage2-init; the child, a forked and exec'd busybox, is a
    // process just like the probe.
    let probe = format!(
        "busybox sleep 30 & child=$!; {}; {}; {}; kill $child",
        can_read("$PPID", "init"),
        can_read("$child", "child"),
        can_read("self", "self"),
    );
    let inner = PlanWriter::new(&inner_rkt, 2)
        .host_app("probe", 0, &probe)
        .caps(&caps);
    let inner_plan = inner.write_to(dir.0.join("inner-plan"));
    let outer = PlanWriter::new(&dir.rkt(), 2)
        .app("inner", Path::new("/"))
        .field("uid")
        .field("0")
        .field("gid")
        .field("0")
        .field("cwd")
        .field("/")
        .list("env", &["PATH=/bin"])
        .list(
            "exec",
            &[STAGE2_INIT, inner_plan.to_str().expect("utf-8 path")],
        )
        .caps(&caps);
    let (status, _, stderr) = Init::start(&dir, &outer).wait();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(read(&inner_rkt.join("status/probe")), "0");
    assert_eq!(read(&out.join("self")), "readable\n");
    assert_eq!(read(&out.join("child")), "readable\n", "apps are dumpable");
    assert_eq!(read(&out.join("init")), "denied\n", "stage2-init is not");
}

#[test]
fn an_unprivileged_app_owns_its_proc_entries() {
    if !requires("an_unprivileged_app_owns_its_proc_entries", &[]) {
        return;
    }
    // The kernel hands /proc/<pid> of a process that is not dumpable to root; an app forked
    // from the non-dumpable stage2-init must be dumpable again after execve. The app also
    // reads its own environment there.
    let dir = TestDir::new("app-dumpable");
    let out = dir.host_out();
    let pid_file = out.join("pid");
    let script = format!(
        "busybox cat /proc/self/environ > {}; echo $$ > {}; exec busybox sleep 30",
        out.join("environ").display(),
        pid_file.display()
    );
    let plan = PlanWriter::new(&dir.rkt(), 2).host_app("app", 1234, &script);
    let mut init = Init::start(&dir, &plan);
    let pid: u32 = wait_until("the app's pid", || {
        fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    });
    let owner = fs::metadata(format!("/proc/{pid}")).map(|m| m.uid());
    init.signal("TERM");
    let (status, _, stderr) = init.wait();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(owner.ok(), Some(1234));
    let environ = read(&out.join("environ"));
    assert!(environ.split('\0').any(|e| e == "PATH=/bin"), "{environ:?}");
}

#[test]
fn sigusr1_is_forwarded_without_stopping_the_pod() {
    if !requires("sigusr1_is_forwarded_without_stopping_the_pod", &[]) {
        return;
    }
    let dir = TestDir::new("usr1");
    let root = dir.app_root("trapper");
    let script = "trap 'echo > /out/usr1' USR1; trap 'echo > /out/term' TERM; \
                  echo > /out/ready; while ! test -e /out/usr1; do sleep 0.05; done; exit 0";
    let plan =
        PlanWriter::new(&dir.rkt(), 10).simple_app("trapper", &root, &["/bin/sh", "-c", script]);
    let mut init = Init::start(&dir, &plan);
    let ready = root.join("out/ready");
    wait_until("the app to trap SIGUSR1", || ready.exists().then_some(()));
    init.signal("USR1");
    let (status, _, stderr) = init.wait();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(dir.status("trapper"), "0");
    assert!(root.join("out/usr1").exists(), "SIGUSR1 reached the app");
    assert!(
        !root.join("out/term").exists(),
        "SIGUSR1 must not stop the pod"
    );
    // The shell reports its `sleep`, which got SIGUSR1 too (the whole process group does);
    // stage2-init itself stays quiet.
    assert!(!stderr.contains("stage2-init"), "{stderr}");
}
