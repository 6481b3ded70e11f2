//! `rkt run` and the pod lifecycle, with the real stage1 and stage2-init.
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rkt_tests::{require_root, ImageSpec, TestEnv};

use super::lifecycle::status_lines;

#[test]
fn app_output_is_undecorated_and_the_exit_code_passes_through() {
    if !require_root("app_output_is_undecorated_and_the_exit_code_passes_through") {
        return;
    }
    let env = TestEnv::new();
    let hello = env.image(
        &ImageSpec::shell("example.com/hello", "echo hello; echo oops >&2"),
        "hello.aci",
    );
    let out = env.run(&[&hello]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "hello\n");
    assert_eq!(out.stderr, "oops\n");
    let seven = env.image(
        &ImageSpec::shell("example.com/seven", "exit 7"),
        "seven.aci",
    );
    assert_eq!(env.run(&[&seven]).code, 7);
}

#[test]
fn multi_app_exit_policy_stops_the_others_and_reports_the_failure() {
    if !require_root("multi_app_exit_policy_stops_the_others_and_reports_the_failure") {
        return;
    }
    let env = TestEnv::new();
    let zero = env.image(&ImageSpec::shell("example.com/zero", "exit 0"), "zero.aci");
    let five = env.image(
        &ImageSpec::shell("example.com/five", "sleep 1; exit 5"),
        "five.aci",
    );
    let slow = env.image(
        &ImageSpec::shell("example.com/slow", "sleep 60"),
        "slow.aci",
    );
    let uuid_file = env.work().join("uuid");
    let started = Instant::now();
    let out = env.run(&[
        &format!("--uuid-file-save={}", uuid_file.display()),
        &zero,
        &five,
        &slow,
    ]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the slow app was not stopped"
    );
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    let lines = status_lines(&env, &uuid);
    for expected in [
        "state=exited",
        "exited=true",
        "app-zero=0",
        "app-five=5",
        "app-slow=0",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing {expected} in {lines:?}"
        );
    }
}

#[test]
fn seed_environment_example() {
    if !require_root("seed_environment_example") {
        return;
    }
    let env = TestEnv::new();
    let printer = ImageSpec::shell(
        "example.com/env-printer",
        "echo EXAMPLE_ENV=$EXAMPLE_ENV; echo FOO=$FOO; echo EXAMPLE_OVERRIDE=$EXAMPLE_OVERRIDE",
    )
    .env("EXAMPLE_OVERRIDE", "image");
    env.fetch(&env.image(&printer, "env-printer.aci"));
    let out = env
        .cmd(&[
            "run",
            "--inherit-env",
            "--set-env=FOO=bar",
            "--set-env=EXAMPLE_OVERRIDE=over",
            "example.com/env-printer",
        ])
        .env("EXAMPLE_ENV", "hello")
        .env("EXAMPLE_OVERRIDE", "under")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "EXAMPLE_ENV=hello\nFOO=bar\nEXAMPLE_OVERRIDE=over\n"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without --inherit-env the parent's variables stay out; the image's value beats nothing else.
    let plain = env
        .cmd(&["run", "example.com/env-printer"])
        .env("EXAMPLE_ENV", "hello")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&plain.stdout),
        "EXAMPLE_ENV=\nFOO=\nEXAMPLE_OVERRIDE=image\n"
    );
}

#[test]
fn seed_passing_arguments_and_overriding_exec() {
    if !require_root("seed_passing_arguments_and_overriding_exec") {
        return;
    }
    let env = TestEnv::new();
    let script = b"#!/bin/sh\necho \"$(basename $0) $*\"\n";
    let worker = ImageSpec::new("example.com/worker", &["/bin/worker"])
        .file("bin/worker", 0o755, script)
        .file("bin/ov", 0o755, script);
    let syncer = ImageSpec::new("example.com/syncer", &["/bin/syncer"])
        .file("bin/syncer", 0o755, script)
        .file("bin/syncer2", 0o755, script);
    env.fetch(&env.image(&worker, "worker.aci"));
    env.fetch(&env.image(&syncer, "syncer.aci"));
    let out = env.rkt(&[
        "run",
        "example.com/worker",
        "--",
        "--loglevel",
        "verbose",
        "---",
        "example.com/syncer",
        "--",
        "--interval",
        "30s",
    ]);
    let mut lines: Vec<&str> = out.ok().lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        ["syncer --interval 30s", "worker --loglevel verbose"]
    );
    let out = env.rkt(&[
        "run",
        "example.com/worker",
        "--exec",
        "/bin/ov",
        "--",
        "--loglevel",
        "verbose",
        "---",
        "example.com/syncer",
        "--exec",
        "/bin/syncer2",
        "--",
        "--interval",
        "30s",
    ]);
    let mut lines: Vec<&str> = out.ok().lines().collect();
    lines.sort();
    assert_eq!(lines, ["ov --loglevel verbose", "syncer2 --interval 30s"]);
}

#[test]
fn seed_user_group_override_and_relative_exec() {
    if !require_root("seed_user_group_override_and_relative_exec") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/busybox", "true"),
        "busybox.aci",
    );
    let out = env.run(&[&img, "--user=1000", "--group=100", "--exec", "id"]);
    let id = out.ok();
    assert!(id.starts_with("uid=1000(user) gid=100(users)"), "{out:?}");
    let date = env.run(&[&img, "--exec", "/bin/date"]);
    assert!(!date.ok().is_empty());
    // Names resolve through the image's /etc/passwd and /etc/group.
    let named = env.run(&[&img, "--user=user", "--group=staff", "--exec", "id"]);
    assert!(
        named.ok().starts_with("uid=1000(user) gid=50(staff)"),
        "{named:?}"
    );
}

#[test]
fn run_by_name_and_by_hash() {
    if !require_root("run_by_name_and_by_hash") {
        return;
    }
    let env = TestEnv::new();
    let id = env.fetch(&env.image(
        &ImageSpec::shell("example.com/app", "echo by-store"),
        "app.aci",
    ));
    assert_eq!(
        env.rkt(&["run", "example.com/app:1.0.0"]).ok(),
        "by-store\n"
    );
    assert_eq!(env.rkt(&["run", "example.com/app"]).ok(), "by-store\n");
    assert_eq!(env.rkt(&["run", &id[..20]]).ok(), "by-store\n");
    let missing = env.rkt(&["run", "--pull-policy=never", "example.com/missing"]);
    assert_eq!(missing.code, 254);
    assert_eq!(
        missing.stderr,
        "run: unable to fetch image from image name \"example.com/missing\": either image was not found in the store or store was disabled and fetching from remote yielded nothing or it was disabled\n"
    );
}

#[test]
fn pods_see_only_their_own_pids_and_hostname() {
    if !require_root("pods_see_only_their_own_pids_and_hostname") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell(
            "example.com/ns",
            "hostname; cat /proc/1/comm; ls /proc | grep -c '^[0-9]'; cat /etc/hostname",
        ),
        "ns.aci",
    );
    let uuid_file = env.work().join("uuid");
    let out = env.run(&[&format!("--uuid-file-save={}", uuid_file.display()), &img]);
    let lines: Vec<&str> = out.ok().lines().collect();
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    assert_eq!(lines[0], format!("rkt-{uuid}"));
    assert_eq!(lines[1], "stage2-init");
    let pids: usize = lines[2].parse().unwrap();
    assert!(pids <= 4, "the app sees {pids} processes: host PIDs leak");
    assert_eq!(lines[3], format!("rkt-{uuid}"));
    let named = env.run(&["--hostname=custom-host", &img]);
    assert!(named.ok().starts_with("custom-host\n"), "{named:?}");
}

#[test]
fn bad_input_fails_with_one_line_and_leaves_nothing_running() {
    if !require_root("bad_input_fails_with_one_line_and_leaves_nothing_running") {
        return;
    }
    let env = TestEnv::new();
    let good = env.image(&ImageSpec::shell("example.com/good", "true"), "good.aci");
    let no_os = env.image(
        &ImageSpec::shell("example.com/noos", "true").without_label("os"),
        "noos.aci",
    );
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--pull-policy=never".into(), "example.com/absent".into()],
            "unable to fetch image",
        ),
        (vec![no_os], "missing os label in the image manifest"),
        (
            vec![good.clone(), "--exec=/bin/nonexistent".into()],
            "/bin/nonexistent",
        ),
        (vec![good.clone(), "--user=nosuchuser".into()], "nosuchuser"),
        (
            vec![good.clone(), "--readonly-rootfs=maybe".into()],
            "--readonly-rootfs must be set with a boolean",
        ),
        (
            vec![
                good.clone(),
                "--".into(),
                "a".into(),
                "---".into(),
                "--".into(),
                "b".into(),
            ],
            "only one set of app arguments allowed per image",
        ),
        (
            vec!["--interactive".into(), good.clone(), good.clone()],
            "interactive option only supports one image",
        ),
        (
            vec!["--exec=/bin/sh".into(), good.clone()],
            "--exec must follow an image",
        ),
        (
            vec!["--net=host,host".into(), good.clone()],
            "duplicate netname",
        ),
        (vec!["--memory=1".into()], "must follow an image"),
        (vec![good.clone(), "--memory=1".into()], "too low"),
        (
            vec![good.clone(), "--working-dir=relative".into()],
            "relative",
        ),
        (vec![good.clone(), "--annotation=BAD=1".into()], "BAD"),
        (vec!["sha512-a".into()], "sha512-a"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--insecure-options=image".to_string(), "run".to_string()];
        all.extend(args.iter().cloned());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = env.rkt(&refs);
        assert_eq!(out.code, 254, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(expected),
            "{args:?}: expected {expected:?} in {out:?}"
        );
        assert_eq!(
            out.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {out:?}"
        );
        let running = std::fs::read_dir(env.data_dir().join("pods/run"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(running, 0, "{args:?} left a pod in run/");
        assert!(env.mounts().is_empty(), "{args:?} left mounts");
    }
    // Aborted prepares are collectable.
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert_eq!(env.rkt(&["list", "--no-legend"]).ok(), "\n");

    // Not root.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(rkt_tests::env::rkt_bin())
        .args([&format!("--dir={}", env.data_dir().display()), "run", &good])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "run: cannot run as unprivileged user\n"
    );
}

#[test]
fn no_overlay_readonly_rootfs_dns_hosts_and_interactive() {
    if !require_root("no_overlay_readonly_rootfs_dns_hosts_and_interactive") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell(
            "example.com/files",
            "cat /etc/resolv.conf; grep 10.1.2.3 /etc/hosts; touch /new && echo writable",
        ),
        "f.aci",
    );
    let out = env.run(&[
        "--no-overlay",
        "--dns=8.8.8.8",
        "--dns-search=example.com",
        "--hosts-entry=10.1.2.3=db",
        &img,
    ]);
    assert_eq!(
        out.ok(),
        "# Generated by rkt run\n\nsearch example.com\nnameserver 8.8.8.8\n10.1.2.3 db\nwritable\n"
    );
    let ro = env.run(&[&img, "--readonly-rootfs=true"]);
    assert_eq!(ro.code, 1, "{ro:?}");
    assert!(ro.stderr.contains("Read-only file system"), "{ro:?}");

    let cat = env.image(&ImageSpec::new("example.com/cat", &["/bin/cat"]), "cat.aci");
    let mut child = env
        .cmd(&["--insecure-options=image", "run", "--interactive", &cat])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"typed input\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "typed input\n");
}

#[test]
fn event_handlers_run_as_root_around_an_unprivileged_app() {
    if !require_root("event_handlers_run_as_root_around_an_unprivileged_app") {
        return;
    }
    let env = TestEnv::new();
    let img = ImageSpec::shell("example.com/handlers", "echo app $(id -u)")
        .user("1000", "100")
        .handler("pre-start", &["/bin/sh", "-c", "echo pre $(id -u)"])
        .handler("post-stop", &["/bin/sh", "-c", "echo post $(id -u)"]);
    let out = env.run(&[&env.image(&img, "h.aci")]);
    assert_eq!(out.ok(), "pre 0\napp 1000\npost 0\n");
}

#[test]
fn pod_manifest_runs_apps_from_the_store() {
    if !require_root("pod_manifest_runs_apps_from_the_store") {
        return;
    }
    let env = TestEnv::new();
    let id = env.fetch(&env.image(
        &ImageSpec::shell("example.com/pm", "echo image-exec"),
        "pm.aci",
    ));
    let manifest = format!(
        r#"{{"acVersion":"0.8.11","acKind":"PodManifest","apps":[{{"name":"first","image":{{"id":"{id}"}},
            "app":{{"exec":["/bin/sh","-c","echo from-pod-manifest $GREETING"],"user":"0","group":"0",
            "environment":[{{"name":"GREETING","value":"hi"}}]}}}}]}}"#
    );
    let path = env.work().join("pod.json");
    std::fs::write(&path, manifest).unwrap();
    let out = env.rkt(&["run", &format!("--pod-manifest={}", path.display())]);
    assert_eq!(out.ok(), "from-pod-manifest hi\n");
    // Flags that only mean something for images given on the command line, as rkt checks
    // them (the deprecated pull flags included).
    for flag in [
        "--set-env=A=b",
        "--store-only",
        "--no-store",
        "--pull-policy=never",
    ] {
        let conflict = env.rkt(&["run", &format!("--pod-manifest={}", path.display()), flag]);
        assert_eq!(conflict.code, 254, "{flag}: {conflict:?}");
        assert!(
            conflict
                .stderr
                .lines()
                .any(|l| l == "run: conflicting flags set with --pod-manifest (see --help)"),
            "{flag}: {conflict:?}"
        );
    }
    // A false boolean is no conflict.
    let fine = env.rkt(&[
        "run",
        &format!("--pod-manifest={}", path.display()),
        "--store-only=false",
    ]);
    assert_eq!(fine.ok(), "from-pod-manifest hi\n");
}

#[test]
fn ports_are_recorded_and_checked_against_the_images() {
    if !require_root("ports_are_recorded_and_checked_against_the_images") {
        return;
    }
    let env = TestEnv::new();
    let mut spec = ImageSpec::shell("example.com/web", "true");
    spec.app().ports.push(aci::schema::Port {
        name: "http".into(),
        protocol: "tcp".into(),
        port: 80,
        count: 1,
        socket_activated: false,
    });
    let img = env.image(&spec, "web.aci");
    let prepared = env.rkt(&[
        "--insecure-options=image",
        "prepare",
        &img,
        "--port=http:8080",
    ]);
    let uuid = prepared.ok().trim().to_string();
    let manifest: serde_json::Value =
        serde_json::from_str(env.rkt(&["cat-manifest", &uuid]).ok()).unwrap();
    assert_eq!(manifest["ports"][0]["name"], "http");
    assert_eq!(manifest["ports"][0]["hostPort"], 8080);
    let unknown = env.rkt(&[
        "--insecure-options=image",
        "prepare",
        &img,
        "--port=db:5432",
    ]);
    assert_eq!(unknown.code, 254);
    assert!(unknown.stderr.contains("\"db\""), "{unknown:?}");
    let host = env.rkt(&[
        "--insecure-options=image",
        "run",
        "--net=host",
        &img,
        "--port=http:8080",
    ]);
    assert!(
        host.stderr
            .contains("--port flag does not work with 'host' networking"),
        "{host:?}"
    );
}

#[test]
fn host_files_sysfs_and_aborted_pods() {
    if !require_root("host_files_sysfs_and_aborted_pods") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/hostfiles", "cat /etc/hosts; ls /sys/class/net"),
        "h.aci",
    );
    // --hosts-entry=host shows the host's file, untouched.
    let out = env.run(&["--hosts-entry=host", &img]);
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(out.ok().starts_with(&host_hosts), "{out:?}");
    // In its own network namespace the pod sees only its own interfaces: lo and the default
    // network's eth0.
    assert!(
        out.stdout.ends_with(&format!("{host_hosts}eth0\nlo\n")),
        "{out:?}"
    );
    let host_net = env.run(&["--net=host", &img]);
    assert!(
        host_net.ok().lines().count() > host_hosts.lines().count() + 1,
        "{host_net:?}"
    );
    // An aborted prepare has no creation time: rkt cannot describe it as JSON.
    let bad = env.run(&[&img, "--exec=/nonexistent"]);
    assert_eq!(bad.code, 254);
    assert!(bad.stderr.contains("\"/nonexistent\""), "{bad:?}");
    let listed = env.rkt(&["list", "--no-legend", "--full"]);
    let uuid = listed
        .ok()
        .lines()
        .find(|l| l.contains("aborted prepare"))
        .and_then(|l| l.split_whitespace().next())
        .expect("an aborted prepare is listed")
        .to_string();
    let json = env.rkt(&["status", "--format=json", &uuid]);
    assert_eq!(json.code, 254);
    assert!(json.stderr.contains("invalid creation time"), "{json:?}");
    let all: serde_json::Value =
        serde_json::from_str(env.rkt(&["list", "--format=json"]).ok()).unwrap();
    assert_eq!(
        all.as_array().unwrap().len(),
        2,
        "the aborted prepare is left out"
    );
}
