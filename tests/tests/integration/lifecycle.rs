//! The pod lifecycle around `rkt run`: prepare and run-prepared, list, status, enter, stop,
//! signals, export, gc, custom stage1 images and the stage1 selection flags.
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use rkt_tests::{require_root, ImageSpec, TestEnv};

/// Starts `rkt run` in the background; its UUID is saved to `work/<name>.uuid`.
pub(crate) fn spawn_run(env: &TestEnv, name: &str, args: &[&str]) -> (Child, String) {
    let uuid_file = env.work().join(format!("{name}.uuid"));
    let save = format!("--uuid-file-save={}", uuid_file.display());
    let mut all = vec!["--insecure-options=image", "run", save.as_str()];
    all.extend_from_slice(args);
    let child = env
        .cmd(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let uuid = TestEnv::wait_uuid(&uuid_file);
    (child, uuid)
}

pub(crate) fn wait_running(env: &TestEnv, uuid: &str) {
    let out = env.rkt(&["status", "--wait-ready=20s", uuid]);
    assert_eq!(out.code, 0, "pod never became ready: {out:?}");
}

pub(crate) fn status_lines(env: &TestEnv, uuid: &str) -> Vec<String> {
    env.rkt(&["status", uuid])
        .ok()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn prepare_then_run_prepared_and_lifecycle_listing() {
    if !require_root("prepare_then_run_prepared_and_lifecycle_listing") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/prepared", "echo ran; exit 3"),
        "p.aci",
    );
    let prep = env.rkt(&["--insecure-options=image", "prepare", &img]);
    let uuid = prep.ok().trim().to_string();
    assert_eq!(uuid.len(), 36, "{prep:?}");
    assert_eq!(prep.stdout, format!("{uuid}\n"));
    let listed = env.rkt(&["list", "--no-legend"]);
    let row: Vec<&str> = listed
        .ok()
        .lines()
        .next()
        .unwrap()
        .split('\t')
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(row[0], &uuid[..8]);
    assert_eq!(row[1], "prepared");
    assert_eq!(row[2], "example.com/prepared:1.0.0");
    assert_eq!(row[3], "prepared");
    assert_eq!(status_lines(&env, &uuid)[0], "state=prepared");
    let run = env.rkt(&["run-prepared", &uuid[..8]]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stdout, "ran\n");
    let lines = status_lines(&env, &uuid);
    assert_eq!(lines[0], "state=exited");
    assert!(lines[1].starts_with("created=20"), "{lines:?}");
    assert!(lines[2].starts_with("started=20"), "{lines:?}");
    assert!(
        lines[3].starts_with("networks=default:ip4=172.16.28."),
        "{lines:?}"
    );
    assert!(lines[4].starts_with("pid="), "{lines:?}");
    assert_eq!(lines[5], "exited=true");
    assert_eq!(lines[6], "app-prepared=3");
    let again = env.rkt(&["run-prepared", &uuid]);
    assert_eq!(again.code, 254);
    assert!(again.stderr.contains("is not prepared"), "{again:?}");

    let json: serde_json::Value =
        serde_json::from_str(env.rkt(&["status", "--format=json", &uuid]).ok()).unwrap();
    assert_eq!(json["name"], uuid.as_str());
    assert_eq!(json["state"], "exited");
    assert_eq!(json["app_names"][0], "prepared");
    assert_eq!(json["apps"][0]["exit_code"], 3);
    assert!(
        json["created_at"].as_i64().unwrap() < 10_000_000_000,
        "pod times are seconds"
    );
    assert!(
        json["apps"][0]["created_at"].as_i64().unwrap() > 1_000_000_000_000_000_000,
        "app times are ns"
    );
    let list: serde_json::Value =
        serde_json::from_str(env.rkt(&["list", "--format=json"]).ok()).unwrap();
    assert_eq!(list[0]["name"], uuid.as_str());

    let manifest: serde_json::Value =
        serde_json::from_str(env.rkt(&["cat-manifest", &uuid]).ok()).unwrap();
    assert_eq!(manifest["acKind"], "PodManifest");
    assert_eq!(manifest["acVersion"], "1.30.0");
    assert_eq!(manifest["apps"][0]["app"]["exec"][2], "echo ran; exit 3");

    let gc = env.rkt(&["gc", "--grace-period=0s"]);
    assert!(
        gc.ok()
            .contains(&format!("Garbage collecting pod \"{uuid}\"")),
        "{gc:?}"
    );
    assert!(
        gc.stderr
            .contains(&format!("gc: moving pod \"{uuid}\" to garbage")),
        "{gc:?}"
    );
    assert!(env.mounts().is_empty(), "left mounted: {:?}", env.mounts());
    assert_eq!(env.rkt(&["list", "--no-legend"]).ok(), "\n");
}

#[test]
fn enter_stop_and_signals() {
    if !require_root("enter_stop_and_signals") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/sleeper", "echo up; sleep 120"),
        "sleeper.aci",
    );
    let (child, uuid) = spawn_run(&env, "sleeper", &[&img]);
    wait_running(&env, &uuid);
    assert_eq!(status_lines(&env, &uuid)[0], "state=running");
    let entered = env.rkt(&[
        "enter",
        &uuid,
        "/bin/sh",
        "-c",
        "echo entered $(hostname) $(cat /proc/1/comm); exit 3",
    ]);
    assert_eq!(entered.code, 3, "{entered:?}");
    assert_eq!(entered.stdout, format!("entered rkt-{uuid} stage2-init\n"));
    let rm = env.rkt(&["rm", &uuid]);
    assert_eq!(rm.code, 254);
    assert!(rm.stderr.contains("is currently running"), "{rm:?}");

    let stop = env.rkt(&["stop", &uuid]);
    assert_eq!(stop.ok(), format!("\"{uuid}\"\n"));
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "up\n");
    assert!(status_lines(&env, &uuid).contains(&"app-sleeper=0".to_string()));
    let stopped = env.rkt(&["stop", &uuid]);
    assert_eq!(stopped.ok(), format!("pod \"{uuid}\" is already stopped\n"));

    // SIGTERM to `rkt run` stops the pod cleanly too.
    let (child, uuid2) = spawn_run(&env, "sleeper2", &[&img]);
    wait_running(&env, &uuid2);
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(status_lines(&env, &uuid2).contains(&"app-sleeper=0".to_string()));

    // --force kills without grace.
    let (child, uuid3) = spawn_run(&env, "sleeper3", &[&img]);
    wait_running(&env, &uuid3);
    env.rkt(&["stop", "--force", &uuid3]).ok();
    child.wait_with_output().unwrap();

    let rm = env.rkt(&["rm", &uuid]);
    assert_eq!(rm.ok(), format!("\"{uuid}\"\n"));
    assert!(!env
        .data_dir()
        .join("pods/exited-garbage")
        .join(&uuid)
        .exists());
}

#[test]
fn custom_stage1_that_only_honours_the_contract() {
    if !require_root("custom_stage1_that_only_honours_the_contract") {
        return;
    }
    let env = TestEnv::new();
    // The entrypoint is a script run by the host's /bin/sh: it only knows the contract.
    let run = b"#!/bin/sh\n\
        test -f pod || { echo 'not in the pod directory' >&2; exit 1; }\n\
        test -n \"$RKT_LOCK_FD\" || { echo 'no lock fd' >&2; exit 1; }\n\
        for a in \"$@\"; do uuid=$a; done\n\
        echo $$ > pid\n\
        mkdir -p stage1/rootfs/rkt/status\n\
        printf 0 > stage1/rootfs/rkt/status/hello\n\
        echo \"custom stage1 ran pod $uuid with $*\"\n";
    let stage1 = ImageSpec::new("example.com/custom-stage1", &["/run"])
        .no_app()
        .annotation("coreos.com/rkt/stage1/run", "/run.sh")
        .annotation("coreos.com/rkt/stage1/enter", "/run.sh")
        .annotation("coreos.com/rkt/stage1/gc", "/gc.sh")
        .file("run.sh", 0o755, run)
        .file("gc.sh", 0o755, b"#!/bin/sh\nexit 0\n");
    let stage1 = env.image(&stage1, "stage1.aci");
    let app = env.image(&ImageSpec::shell("example.com/hello", "true"), "hello.aci");
    let uuid_file = env.work().join("uuid");
    let out = env.run(&[
        &format!("--stage1-path={stage1}"),
        &format!("--uuid-file-save={}", uuid_file.display()),
        &app,
    ]);
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    assert_eq!(
        out.ok(),
        format!("custom stage1 ran pod {uuid} with --net=default --local-config=/etc/rkt {uuid}\n")
    );
    let lines = status_lines(&env, &uuid);
    assert!(lines.contains(&"app-hello=0".to_string()), "{lines:?}");
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert!(env.mounts().is_empty());
}

#[test]
fn stage1_selection_flags() {
    if !require_root("stage1_selection_flags") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::shell("example.com/s1", "echo ok"), "s1.aci");
    let stage1 = rkt_tests::env::stage1_aci();
    let s1 = stage1.to_str().unwrap();
    assert_eq!(
        env.run(&[&format!("--stage1-path={s1}"), &img]).ok(),
        "ok\n"
    );
    // The seed writes the flag before the subcommand, as rkt accepts it.
    let before = env.rkt(&[
        "--insecure-options=image",
        &format!("--stage1-path={s1}"),
        "run",
        &img,
    ]);
    assert_eq!(before.ok(), "ok\n");
    assert_eq!(
        env.run(&[&format!("--stage1-url=file://{s1}"), &img]).ok(),
        "ok\n"
    );
    let id = env.fetch(s1);
    assert_eq!(
        env.run(&[&format!("--stage1-hash={id}"), &img]).ok(),
        "ok\n"
    );
    assert_eq!(
        env.run(&["--stage1-name=coreos.com/rkt/stage1-rs:1.30.0", &img])
            .ok(),
        "ok\n"
    );
    let both = env.run(&[
        &format!("--stage1-path={s1}"),
        &format!("--stage1-hash={id}"),
        &img,
    ]);
    assert_eq!(both.code, 254);
    assert!(both.stderr.contains("mutually exclusive"), "{both:?}");
}

#[test]
fn export_an_exited_pod_and_wait_for_status() {
    if !require_root("export_an_exited_pod_and_wait_for_status") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell(
            "example.com/exporter",
            "sleep 3; echo made-in-pod > /result",
        ),
        "e.aci",
    );
    let (child, uuid) = spawn_run(&env, "exporter", &[&img]);
    let running = env.rkt(&[
        "export",
        &uuid,
        env.work().join("early.aci").to_str().unwrap(),
    ]);
    assert_eq!(running.code, 254);
    assert!(running.stderr.contains("pod is not exited"), "{running:?}");
    // --wait blocks until the pod has finished.
    let waited = env.rkt(&["status", "--wait=30s", &uuid]);
    assert!(waited.ok().starts_with("state=exited\n"), "{waited:?}");
    child.wait_with_output().unwrap();
    let out = env.work().join("exported.aci");
    let bad = env.rkt(&[
        "export",
        &uuid,
        env.work().join("exported.tar").to_str().unwrap(),
    ]);
    assert!(bad.stderr.contains("extension must be .aci"), "{bad:?}");
    env.rkt(&["export", &uuid, out.to_str().unwrap()]).ok();
    let again = env.rkt(&["export", &uuid, out.to_str().unwrap()]);
    assert!(
        again
            .stderr
            .contains("target file exists (try --overwrite)"),
        "{again:?}"
    );
    // The exported image carries the pod's changes and runs.
    let run = env.run(&[out.to_str().unwrap(), "--exec", "/bin/cat", "--", "/result"]);
    assert_eq!(run.ok(), "made-in-pod\n");
}

#[test]
fn a_killed_rkt_run_takes_its_pod_down() {
    if !require_root("a_killed_rkt_run_takes_its_pod_down") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/orphan", "sleep 300"),
        "o.aci",
    );
    let (mut child, uuid) = spawn_run(&env, "orphan", &[&img]);
    wait_running(&env, &uuid);
    let pid: i32 = status_lines(&env, &uuid)
        .iter()
        .find_map(|l| l.strip_prefix("pid=").map(|p| p.parse().unwrap()))
        .expect("pid line");
    child.kill().unwrap();
    child.wait().unwrap();
    // SAFETY: signal 0 only checks that the process exists.
    let gone = TestEnv::wait_for(
        Duration::from_secs(10),
        || unsafe { libc::kill(pid, 0) } != 0,
    );
    assert!(gone, "the pod's PID 1 outlived rkt run");
    assert!(TestEnv::wait_for(Duration::from_secs(5), || status_lines(
        &env, &uuid
    )[0]
        == "state=exited"));
}

/// A process' name (`/proc/PID/comm`), empty once it is gone.
fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default()
}

/// `Rss` and `Pss` (KiB) of a process' mappings of the file `path`.
fn mapped_pages(pid: i32, path: &Path) -> (u64, u64) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let (mut rss, mut pss, mut ours) = (0, 0, false);
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        let value = || {
            fields
                .clone()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match first {
            "Rss:" if ours => rss += value(),
            "Pss:" if ours => pss += value(),
            _ if first.contains('-') && !first.ends_with(':') => {
                ours = line.split_whitespace().nth(5).map(Path::new) == Some(path);
            }
            _ => {}
        }
    }
    (rss, pss)
}

/// A pod that runs a while is left to the waiter (docs/stage-contract.md, "The waiter"): the
/// `rkt run` process becomes stage2-init, run from the store's stage1 tree like the pod's PID 1
/// (their code pages are shared), holding nothing of stage1's but the pod lock. Signals still
/// reach the apps, `rkt run` still exits with the pod's status, the cgroups still go with the
/// pod, and a killed waiter still takes the pod down.
#[test]
fn a_long_running_pod_is_left_to_the_waiter() {
    if !require_root("a_long_running_pod_is_left_to_the_waiter") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell(
            "example.com/waited",
            "trap 'echo got usr1; exit 9' USR1; echo up; sleep 300 & wait",
        ),
        "waited.aci",
    );
    let (child, uuid) = spawn_run(&env, "waited", &[&img, "--memory=64M"]);
    wait_running(&env, &uuid);
    let pid = child.id() as i32;
    assert!(
        TestEnv::wait_for(Duration::from_secs(10), || comm(pid) == "stage1-waiter\n"),
        "rkt run was not handed over to the waiter: {:?}",
        comm(pid)
    );
    let pid1: i32 = status_lines(&env, &uuid)
        .iter()
        .find_map(|l| l.strip_prefix("pid=").map(|p| p.parse().unwrap()))
        .expect("pid line");
    let stat = std::fs::read_to_string(format!("/proc/{pid1}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit(") ")
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ppid, pid, "the pod's PID 1 is the waiter's child");

    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let tree = env.data_dir().join("cas/tree");
    assert!(
        exe.starts_with(&tree) && exe.ends_with("rootfs/stage2-init"),
        "the waiter runs {}",
        exe.display()
    );
    let (rss, pss) = mapped_pages(pid, &exe);
    assert!(
        rss > 0 && pss < rss,
        "the waiter shares no code pages with PID 1: Rss {rss} KiB, Pss {pss} KiB"
    );

    let pod_dir = env.data_dir().join("pods/run").join(&uuid);
    let mut open: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.display().to_string())
        .collect();
    open.sort();
    assert!(
        open.contains(&pod_dir.display().to_string()),
        "the pod lock is held: {open:?}"
    );
    assert!(
        !open
            .iter()
            .any(|t| t.contains("memfd:") || t.contains("cgroup") || t.contains("netns")),
        "stage1's descriptors stay with stage1: {open:?}"
    );
    assert!(open.len() <= 6, "{open:?}");

    let cgroups = std::fs::read_to_string(pod_dir.join("cgroups")).unwrap();
    // The record names the pod's cgroup in every hierarchy; those that limit something exist.
    let dirs: Vec<&str> = cgroups.lines().collect();
    assert!(dirs.iter().any(|d| Path::new(d).is_dir()), "{dirs:?}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "up\ngot usr1\n");
    assert!(
        dirs.iter().all(|d| !Path::new(d).exists()),
        "the cleanup after the waiter removes the pod's cgroups: {dirs:?}"
    );
    assert!(status_lines(&env, &uuid).contains(&"app-waited=9".to_string()));

    // Killing the waiter takes the pod down, as killing stage1 did; gc cleans up after it.
    let (mut child, uuid) = spawn_run(&env, "waited2", &[&img, "--memory=64M"]);
    wait_running(&env, &uuid);
    let pid = child.id() as i32;
    assert!(TestEnv::wait_for(Duration::from_secs(10), || comm(pid) == "stage1-waiter\n"));
    let pod_dir = env.data_dir().join("pods/run").join(&uuid);
    let cgroups = std::fs::read_to_string(pod_dir.join("cgroups")).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(TestEnv::wait_for(Duration::from_secs(10), || status_lines(
        &env, &uuid
    )[0]
        == "state=exited"));
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert!(cgroups.lines().all(|d| !Path::new(d).exists()), "{cgroups}");
}
