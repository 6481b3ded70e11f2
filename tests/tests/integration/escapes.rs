//! Ways out of a pod that an attacker's review found, each run as the attack itself: a hostile
//! image built here carries `pod-attack` (tests/attack) or a shell script, and the test asserts
//! the attempt fails. The host side plays the operator, with a real terminal where it matters.
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use rkt_tests::pty::OperatorTty;
use rkt_tests::{require_root, ImageSpec, TestEnv};

const WAIT: Duration = Duration::from_secs(20);

fn field<'a>(output: &'a str, name: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in:\n{output}"))
}

/// Starts `rkt run` in the background for a pod that stays up; returns it and its UUID.
fn start_pod(env: &TestEnv, args: &[&str]) -> (std::process::Child, String) {
    let uuid_file = env.work().join(format!("uuid-{}", args.len()));
    let mut all = vec![
        "--insecure-options=image".to_string(),
        "run".into(),
        format!("--uuid-file-save={}", uuid_file.display()),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let child = env
        .cmd(&all.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rkt run");
    let uuid = TestEnv::wait_uuid(&uuid_file);
    assert!(
        TestEnv::wait_for(WAIT, || {
            env.rkt(&["status", &uuid]).stdout.contains("state=running")
        }),
        "pod never ran"
    );
    // The pod's init is ready for `rkt enter` once its apps started.
    assert!(
        TestEnv::wait_for(WAIT, || env.rkt(&["enter", &uuid, "/bin/true"]).code == 0),
        "rkt enter never worked"
    );
    (child, uuid)
}

fn sha512(path: &std::path::Path) -> String {
    let out = Command::new("sha512sum")
        .arg(path)
        .output()
        .expect("sha512sum");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// rkt's CVE-2019-10144 and the CVE-2019-5736 pattern: `rkt enter` ran the pod's own binary
/// with every capability of the caller, while a host binary sat in the pod's PID namespace.
#[test]
fn entered_commands_get_exactly_the_apps_confinement() {
    if !require_root("entered_commands_get_exactly_the_apps_confinement") {
        return;
    }
    let env = TestEnv::new();
    let img = ImageSpec::shell(
        "example.com/victim",
        "/bin/pod-attack creds > /tmp/app-creds; sleep 300",
    )
    .with_attack()
    .isolator(
        "os/linux/capabilities-remove-set",
        serde_json::json!({"set": ["CAP_NET_RAW", "CAP_MKNOD"]}),
    );
    let img = env.image(&img, "victim.aci");
    let (_run, uuid) = start_pod(&env, &[&img]);

    // What the app itself holds.
    let app_creds = env.rkt(&["enter", &uuid, "/bin/cat", "/tmp/app-creds"]);
    let entered = env.rkt(&["enter", &uuid, "/bin/pod-attack", "creds"]);
    let creds = entered.ok();
    // rkt's 14 minus the two removed, in every set; nothing ambient.
    let expected = "00000000a00405fb";
    for set in ["CapBnd:", "CapEff:", "CapPrm:", "CapInh:"] {
        assert_eq!(field(creds, set), expected, "{set}\n{creds}");
        assert_eq!(field(&app_creds.stdout, set), expected, "{set}");
    }
    assert_eq!(field(creds, "CapAmb:"), "0000000000000000");
    // A session of its own, not the caller's.
    assert_eq!(field(creds, "sid:"), field(creds, "pid:"), "{creds}");

    // Only descriptors 0-2, whatever the caller held open (CVE-2024-21626 pattern).
    let rkt = rkt_tests::env::rkt_bin();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 7</etc/hostname 8</ 9<{}; exec {} --dir={} enter {uuid} /bin/pod-attack fds",
            env.data_dir().display(),
            rkt.display(),
            env.data_dir().display()
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let fds = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let numbers: Vec<&str> = fds
        .lines()
        .filter_map(|l| l.strip_prefix("fd ")?.split(':').next())
        .collect();
    assert_eq!(numbers, ["0", "1", "2"], "{fds}");

    // No host binary is ever visible in the pod's PID namespace, during an enter included:
    // every process the pod can see runs a binary of the pod's own.
    let exes = env.rkt(&["enter", &uuid, "/bin/pod-attack", "exes"]);
    let exes = exes.ok();
    assert!(exes.lines().count() >= 3, "{exes}");
    for line in exes.lines() {
        assert!(
            !line.contains("stage1") && !line.contains("/cas/") && !line.contains("memfd"),
            "a host binary is visible in the pod: {line}"
        );
    }
    // The pod's init is not dumpable: its executable cannot be opened from inside.
    assert!(
        exes.lines()
            .any(|l| l.starts_with("exe 1 ") && l.contains("open error")),
        "{exes}"
    );
}

/// The store's stage1 binaries are what stage0 executes for every pod: an entered command
/// that keeps its parent's executable open and overwrites it once the parent exits (runc's
/// CVE-2019-5736) must find no host binary to hold, and the store stays as it was.
#[test]
fn the_stores_stage1_is_unchanged_after_a_hostile_enter() {
    if !require_root("the_stores_stage1_is_unchanged_after_a_hostile_enter") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/trojan", "sleep 300").with_attack(),
        "trojan.aci",
    );
    let (_run, uuid) = start_pod(&env, &[&img]);
    let trees = env.data_dir().join("cas/tree");
    let stage1_binaries: Vec<_> = std::fs::read_dir(&trees)
        .unwrap()
        .flatten()
        .map(|t| t.path().join("rootfs/stage1"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(stage1_binaries.len(), 1, "one stage1 tree in the store");
    let before = sha512(&stage1_binaries[0]);
    // Keeps whatever non-image executable it sees, then overwrites it.
    let watcher = env.rkt(&[
        "enter",
        &uuid,
        "/bin/pod-attack",
        "watch-exes",
        "/tmp/watch",
        "4",
    ]);
    assert!(watcher.ok().contains("watching"), "{watcher:?}");
    for _ in 0..20 {
        env.rkt(&["enter", &uuid, "/bin/true"]).ok();
    }
    // Its parent: a process holding its parent's executable, overwritten once it exits.
    let attack = env.rkt(&[
        "enter",
        &uuid,
        "/bin/pod-attack",
        "overwrite-parent-exe",
        "/tmp/parent",
    ]);
    let mut reports = String::new();
    assert!(
        TestEnv::wait_for(WAIT, || {
            reports = env
                .rkt(&["enter", &uuid, "/bin/cat", "/tmp/watch", "/tmp/parent"])
                .stdout;
            reports.contains("end\n") && reports.contains("failed")
        }),
        "no reports from the attacks: {attack:?}\n{reports}"
    );
    assert!(!reports.contains("written"), "{reports}");
    assert!(
        !reports.contains("seen "),
        "a foreign executable was visible: {reports}"
    );
    assert_eq!(
        sha512(&stage1_binaries[0]),
        before,
        "the store's stage1 changed"
    );
    env.rkt(&["stop", &uuid]).ok();
    // Later commands still run the genuine stage1.
    let img2 = env.image(
        &ImageSpec::shell("example.com/after", "echo fine"),
        "after.aci",
    );
    assert_eq!(env.run(&[&img2]).ok(), "fine\n");
}

/// TIOCSTI through `rkt enter`: the entered command gets a terminal of the pod's own, so what
/// it pushes never reaches the operator's shell.
#[test]
fn enter_on_a_terminal_gets_a_pod_pty() {
    if !require_root("enter_on_a_terminal_gets_a_pod_pty") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/tty", "sleep 300").with_attack(),
        "tty.aci",
    );
    let (_run, uuid) = start_pod(&env, &[&img]);
    let mut tty = OperatorTty::new(30, 100);
    let child = tty.spawn(env.cmd(&[
        "enter",
        &uuid,
        "/bin/sh",
        "-c",
        "stty size; /bin/pod-attack tiocsti 'touch /tmp/INJECTED\n'; echo done",
    ]));
    let out = child.wait_with_output().unwrap();
    assert!(tty.wait_for("done", WAIT), "{}", tty.screen());
    assert!(out.status.success(), "{}", tty.screen());
    let screen = tty.screen();
    assert!(
        screen.contains("30 100"),
        "the pod pty has the operator's size: {screen}"
    );
    assert!(screen.contains("tiocsti fd 0: ok"), "{screen}");
    assert_eq!(
        tty.typed_into_shell(),
        "",
        "the pod typed into the operator's shell"
    );
}

/// `rkt run --interactive`: the app gets a new pty, proxied, which follows the operator's
/// window size; the operator's terminal is back to normal afterwards.
#[test]
fn interactive_apps_get_a_pod_pty_that_follows_the_window() {
    if !require_root("interactive_apps_get_a_pod_pty_that_follows_the_window") {
        return;
    }
    let env = TestEnv::new();
    let script = "stty size; read line; echo got $line; stty size; /bin/pod-attack tiocsti 'touch /tmp/INJECTED\n'";
    let img = env.image(
        &ImageSpec::shell("example.com/interactive", script).with_attack(),
        "i.aci",
    );
    let mut tty = OperatorTty::new(24, 80);
    let child = tty.spawn(env.cmd(&["--insecure-options=image", "run", "--interactive", &img]));
    assert!(tty.wait_for("24 80", WAIT), "{}", tty.screen());
    tty.resize(40, 120);
    // The pod's pty is cooked: a typed line ends with Enter.
    std::thread::sleep(Duration::from_millis(200));
    tty.type_in("hello\r");
    let out = child.wait_with_output().unwrap();
    assert!(tty.wait_for("tiocsti fd 0", WAIT), "{}", tty.screen());
    assert!(out.status.success(), "{}", tty.screen());
    let screen = tty.screen();
    assert!(screen.contains("40 120"), "{screen}");
    assert!(screen.contains("got hello"), "{screen}");
    assert_eq!(
        tty.typed_into_shell(),
        "",
        "the app typed into the operator's shell"
    );
}

/// CAP_MKNOD is in rkt's default set, but a node made anywhere in the pod (rootfs, empty
/// volume, host volume) is unusable, while the devices stage1 provides keep working.
#[test]
fn device_nodes_made_in_a_pod_do_not_work() {
    if !require_root("device_nodes_made_in_a_pod_do_not_work") {
        return;
    }
    let env = TestEnv::new();
    let host = env.work().join("host-volume");
    std::fs::create_dir_all(&host).unwrap();
    let script = "for d in /tmp /data /host; do echo \"== $d\"; /bin/pod-attack mknod $d/null 1 3; done; \
                  echo x > /dev/null && echo dev-null-works; test -c /dev/console && echo console-ok";
    let img = ImageSpec::shell("example.com/mknod", script)
        .with_attack()
        .mount_point("data", "/data", false)
        .mount_point("host", "/host", false);
    let img = env.image(&img, "mknod.aci");
    let out = env.run(&[
        "--volume",
        &format!("host,kind=host,source={}", host.display()),
        &img,
    ]);
    let text = out.ok();
    assert_eq!(text.matches("mknod: ok").count(), 3, "{text}");
    assert_eq!(
        text.matches("open: error Permission denied").count(),
        3,
        "{text}"
    );
    assert!(!text.contains("write: ok"), "{text}");
    assert!(text.contains("dev-null-works"), "{text}");
    assert!(text.contains("console-ok"), "{text}");
}

/// A root app used to reach the stage1 root by the classic chroot escape (apps were chrooted
/// and keep CAP_SYS_CHROOT); an unprivileged one through a working directory that is a
/// symlink to /proc/1/root, entered before privileges were dropped.
#[test]
fn apps_cannot_reach_the_stage1_root() {
    if !require_root("apps_cannot_reach_the_stage1_root") {
        return;
    }
    let env = TestEnv::new();
    let escape = env.image(
        &ImageSpec::new("example.com/chroot", &["/bin/pod-attack", "chroot-escape"]).with_attack(),
        "chroot.aci",
    );
    let out = env.run(&[&escape]);
    let text = out.ok();
    assert!(text.contains("chroot: ok"), "the attack ran: {text}");
    for marker in ["/stage2-init", "/rkt", "/opt/stage2"] {
        assert!(
            text.contains(&format!("sees {marker}: false")),
            "{marker} reached:\n{text}"
        );
    }

    let cwd = ImageSpec::shell("example.com/cwd", "ls")
        .user("1000", "100")
        .symlink("w", "/proc/1/root")
        .working_dir("/w");
    let out = env.run(&[&env.image(&cwd, "cwd.aci")]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("chdir /w"),
        "the working directory is refused: {out:?}"
    );
    assert!(!out.stdout.contains("stage2-init"), "{out:?}");
    assert!(!out.stdout.contains("opt"), "{out:?}");

    // What stage1 writes for stage2-init holds every app's environment: root only, in the
    // pod's runtime tmpfs (docs/stage-contract.md, "Runtime files"), never on the disk.
    let img = env.image(
        &ImageSpec::shell("example.com/files", "sleep 300").env("SECRET", "s3cret"),
        "files.aci",
    );
    let (child, uuid) = start_pod(&env, &[&img]);
    let pod = env.data_dir().join("pods/run").join(&uuid);
    let pid1 = std::fs::read_to_string(pod.join("pid")).unwrap();
    let run = std::path::PathBuf::from(format!("/proc/{}/root/rkt/run", pid1.trim()));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&run), 0o700);
    for file in ["init-plan", "env/files"] {
        assert_eq!(mode(&run.join(file)), 0o600, "{file}");
    }
    let plan = std::fs::read(run.join("init-plan")).unwrap();
    assert!(
        plan.windows(6).any(|w| w == b"s3cret"),
        "the plan has the environment"
    );
    env.rkt(&["stop", &uuid]).ok();
    child.wait_with_output().unwrap();
    // What stays of stage1's root is its overlay's upper directory (the manifests, which
    // carry the environment as rkt's did, are elsewhere).
    let tree = std::fs::read_to_string(pod.join("stage1TreeStoreID")).unwrap();
    let upper = pod.join("overlay").join(tree.trim()).join("upper");
    let mut stack = vec![upper.join("rkt")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(6).any(|w| w == b"s3cret"),
                    "{} holds the app's environment",
                    path.display()
                );
            }
        }
    }
    assert!(!upper.join("rkt/run/init-plan").exists());
    assert!(upper.join("rkt/status/files").exists(), "the status stays");
}

/// The read-only /proc binds resolved their *source* on the host: an image whose /proc is a
/// symlink climbing out of its root got a host directory bound in.
#[test]
fn proc_hardening_never_binds_host_directories() {
    if !require_root("proc_hardening_never_binds_host_directories") {
        return;
    }
    let env = TestEnv::new();
    let lure = env.work().join("lure");
    std::fs::create_dir_all(lure.join("sys")).unwrap();
    std::fs::write(lure.join("sys/secret"), "host secret\n").unwrap();
    // Absolute: followed on the host it leads to the lure; inside the root, to the image's
    // own directory of that name.
    let inside = lure
        .display()
        .to_string()
        .trim_start_matches('/')
        .to_string();
    let target = format!("/{inside}");
    let mut img = ImageSpec::shell(
        "example.com/proc-lure",
        &format!("cat /{inside}/sys/secret 2>&1; cat /proc/sys/kernel/hostname 2>&1; echo end"),
    )
    .symlink("proc", &target);
    let mut parents = String::new();
    for part in inside.split('/') {
        parents = if parents.is_empty() {
            part.to_string()
        } else {
            format!("{parents}/{part}")
        };
        if parents != "tmp" {
            img = img.dir(&parents, 0o755);
        }
    }
    let out = env.run(&[&env.image(&img, "lure.aci")]);
    assert!(!out.stdout.contains("host secret"), "{out:?}");
    assert!(out.stdout.contains("end"), "{out:?}");
}

/// The pod's mount table shows nothing of the host's data directory or store for its root.
#[test]
fn the_apps_mountinfo_hides_the_data_directory() {
    if !require_root("the_apps_mountinfo_hides_the_data_directory") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/mounts", "cat /proc/self/mountinfo"),
        "m.aci",
    );
    let out = env.run(&[&img]);
    let data = env.data_dir().display().to_string();
    let root_line = out
        .ok()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no root mount in {}", out.stdout))
        .to_string();
    assert!(!root_line.contains(&data), "{root_line}");
    assert!(!root_line.contains("cas/tree"), "{root_line}");
    assert!(!out.stdout.contains("cas/tree"), "{}", out.stdout);
}

/// A value with a newline used to add a second variable to `rkt/env/<app>`, which `rkt enter`
/// applied: `LD_PRELOAD` for every entered command. Values are now carried exactly.
#[test]
fn environment_values_cannot_smuggle_variables_into_enter() {
    if !require_root("environment_values_cannot_smuggle_variables_into_enter") {
        return;
    }
    let env = TestEnv::new();
    let img = ImageSpec::shell("example.com/env", "sleep 300")
        .env("FROM_IMAGE", "a\nLD_LIBRARY_PATH=/evil");
    let img = env.image(&img, "env.aci");
    let (_run, uuid) = start_pod(&env, &["--set-env=A=x\nLD_PRELOAD=/evil.so", &img]);
    let script = "test -z \"${LD_PRELOAD+set}\" && echo no-preload; \
                  test -z \"${LD_LIBRARY_PATH+set}\" && echo no-library-path; \
                  printf '%s|' \"$A\" \"$FROM_IMAGE\"";
    let out = env.rkt(&["enter", &uuid, "/bin/sh", "-c", script]);
    assert_eq!(
        out.ok(),
        "no-preload\nno-library-path\nx\nLD_PRELOAD=/evil.so|a\nLD_LIBRARY_PATH=/evil|",
        "values arrive whole, and add no variable"
    );
}

/// Had a pod once overwritten the store's stage1 binary, nothing would run it: stage0 takes
/// every entrypoint from the stored image, checked against its ID, into a sealed in-memory
/// copy. A tampered blob is refused.
#[test]
fn stage1_entrypoints_run_only_from_the_verified_image() {
    if !require_root("stage1_entrypoints_run_only_from_the_verified_image") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::shell("example.com/v", "echo genuine"), "v.aci");
    assert_eq!(env.run(&[&img]).ok(), "genuine\n");
    let marker = env.work().join("payload-ran");
    let trees = env.data_dir().join("cas/tree");
    let mut replaced = 0;
    for tree in std::fs::read_dir(&trees).unwrap().flatten() {
        let binary = tree.path().join("rootfs/stage1");
        if binary.exists() {
            std::fs::remove_file(&binary).unwrap();
            std::fs::write(&binary, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
            std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
            replaced += 1;
        }
    }
    assert_eq!(replaced, 1);
    // run (with --no-overlay too, which copies the tree), stop, gc and enter all still use
    // the genuine stage1.
    let sleeper = env.image(&ImageSpec::shell("example.com/s", "sleep 300"), "s.aci");
    let (_run, uuid) = start_pod(&env, &[&sleeper]);
    assert_eq!(env.rkt(&["enter", &uuid, "/bin/echo", "in"]).ok(), "in\n");
    env.rkt(&["stop", &uuid]).ok();
    assert_eq!(env.run(&["--no-overlay", &img]).ok(), "genuine\n");
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert!(!marker.exists(), "the tampered tree's binary ran");

    // A changed blob no longer matches the image ID: refused, not run.
    let images = env.data_dir().join("cas/image");
    for image in std::fs::read_dir(&images).unwrap().flatten() {
        let manifest = std::fs::read_to_string(image.path().join("manifest")).unwrap();
        if manifest.contains("stage1") {
            // Still a well-formed (possibly gzipped) tar: one byte of a file changed.
            let blob = image.path().join("blob");
            let bytes = std::fs::read(&blob).unwrap();
            let gzipped = bytes.starts_with(&[0x1f, 0x8b]);
            let mut tar = if gzipped {
                Command::new("gzip")
                    .arg("-dc")
                    .arg(&blob)
                    .output()
                    .unwrap()
                    .stdout
            } else {
                bytes
            };
            let n = tar.len();
            tar[n / 2] ^= 0xff;
            let tampered = if gzipped {
                let plain = env.work().join("tampered.tar");
                std::fs::write(&plain, &tar).unwrap();
                Command::new("gzip")
                    .arg("-c")
                    .arg(&plain)
                    .output()
                    .unwrap()
                    .stdout
            } else {
                tar
            };
            std::fs::write(&blob, tampered).unwrap();
        }
    }
    // The tree's copy is trusted only while it is unchanged since it was compared with the
    // blob (docs/stage-contract.md, "How stage0 executes entrypoints"): once it changes, the
    // blob is read again, and the changed blob is refused.
    for tree in std::fs::read_dir(&trees).unwrap().flatten() {
        let binary = tree.path().join("rootfs/stage1");
        if binary.exists() {
            let touched = Command::new("touch").arg(&binary).status().unwrap();
            assert!(touched.success());
        }
    }
    let refused = env.run(&[&img]);
    assert_eq!(refused.code, 254, "{refused:?}");
    // Found while re-rendering the changed tree, before any entrypoint is loaded.
    assert!(
        refused.stderr.contains("cannot render stage1 image")
            || refused
                .stderr
                .contains("cannot load the stage1 /init entrypoint"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("is corrupt on disk"), "{refused:?}");
    assert!(!marker.exists());
}
