//! The security baseline every pod gets: rkt's default capabilities, read-only and masked
//! kernel interfaces, no way out through /proc/1/root, no leaked descriptors, mount targets
//! that cannot leave the app's root.
use std::process::Command;

use rkt_tests::{require_root, ImageSpec, TestEnv};

/// rkt's 14 default capabilities as a /proc/self/status mask.
const DEFAULT_CAPS: &str = "00000000a80425fb";

fn field(output: &str, name: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

#[test]
fn apps_get_rkts_default_capabilities() {
    if !require_root("apps_get_rkts_default_capabilities") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell(
            "example.com/caps",
            "grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status",
        ),
        "caps.aci",
    );
    let out = env.run(&[&img]);
    let status = out.ok();
    assert_eq!(field(status, "CapEff:"), DEFAULT_CAPS, "{out:?}");
    assert_eq!(field(status, "CapBnd:"), DEFAULT_CAPS, "{out:?}");
    // A non-root app has none.
    let user = env.run(&[&img, "--user=1000", "--group=100"]);
    assert_eq!(field(user.ok(), "CapEff:"), "0000000000000000");
    assert_eq!(field(&user.stdout, "CapBnd:"), DEFAULT_CAPS);
    // The capability isolators narrow the set (widening it needs --caps-retain: hostside.rs).
    let retain = ImageSpec::shell("example.com/retain", "grep CapEff /proc/self/status").isolator(
        "os/linux/capabilities-retain-set",
        serde_json::json!({"set": ["CAP_KILL", "CAP_CHOWN"]}),
    );
    let out = env.run(&[&env.image(&retain, "retain.aci")]);
    assert_eq!(field(out.ok(), "CapEff:"), "0000000000000021");
    // --insecure-options=capabilities leaves them alone.
    let all = env.rkt(&["--insecure-options=image,capabilities", "run", &img]);
    assert_ne!(field(all.ok(), "CapEff:"), DEFAULT_CAPS);
}

#[test]
fn read_only_volumes_cannot_be_remounted_and_proc_is_protected() {
    if !require_root("read_only_volumes_cannot_be_remounted_and_proc_is_protected") {
        return;
    }
    let env = TestEnv::new();
    let src = env.work().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let script = "mount -o remount,rw /data 2>/dev/null && echo remounted; touch /data/x 2>/dev/null && echo wrote; \
                  cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern 2>/dev/null && echo sysctl-written; \
                  test -s /proc/kcore && echo kcore-visible; ls /proc/1/root/ >/dev/null 2>&1 && echo pid1-root; \
                  mknod /tmp/null c 1 3 && cat /tmp/null 2>/dev/null && echo device-works; echo done";
    let img = env.image(
        &ImageSpec::shell("example.com/escape", script).mount_point("data", "/data", true),
        "e.aci",
    );
    let out = env.run(&[
        "--volume",
        &format!("data,kind=host,source={}", src.display()),
        &img,
    ]);
    assert_eq!(out.ok(), "done\n", "{out:?}");
    assert!(!src.join("x").exists());
}

#[test]
fn mount_targets_cannot_use_magic_links() {
    if !require_root("mount_targets_cannot_use_magic_links") {
        return;
    }
    let env = TestEnv::new();
    let img = ImageSpec::shell("example.com/magic", "true").mount_point(
        "evil",
        "/proc/self/cwd/etc",
        false,
    );
    let out = env.run(&[&env.image(&img, "m.aci")]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("stage1: "), "{out:?}");
    assert!(out.stderr.contains("/proc/self/cwd/etc"), "{out:?}");
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_mounts.contains("sharedVolumes"),
        "a volume leaked into the host namespace"
    );
}

#[test]
fn the_callers_descriptors_do_not_reach_apps() {
    if !require_root("the_callers_descriptors_do_not_reach_apps") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/fds", "ls /proc/self/fd"),
        "fds.aci",
    );
    let rkt = rkt_tests::env::rkt_bin();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 7</etc/hostname 9</etc/hostname; exec {} --dir={} --insecure-options=image run {img}",
            rkt.display(),
            env.data_dir().display()
        ))
        .output()
        .unwrap();
    let fds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !fds.contains(&"7".to_string()) && !fds.contains(&"9".to_string()),
        "leaked: {fds:?}"
    );
}

#[test]
fn gc_and_stop_never_run_binaries_from_the_pod() {
    if !require_root("gc_and_stop_never_run_binaries_from_the_pod") {
        return;
    }
    let env = TestEnv::new();
    let marker = env.work().join("escaped");
    let img = env.image(&ImageSpec::shell("example.com/plain", "true"), "p.aci");
    let uuid_file = env.work().join("uuid");
    env.run(&[&format!("--uuid-file-save={}", uuid_file.display()), &img])
        .ok();
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    // Even if something replaced the pod's own stage1 binary (its root is writable): in the
    // stage1 overlay's upper directory, and where the host sees the stage1 root (empty, the
    // overlay lived in the pod's mount namespace)...
    let pod = env.data_dir().join("pods/run").join(&uuid);
    let tree = std::fs::read_to_string(pod.join("stage1TreeStoreID")).unwrap();
    for root in [
        pod.join("overlay").join(tree.trim()).join("upper"),
        pod.join("stage1/rootfs"),
    ] {
        let stage1 = root.join("stage1");
        let _ = std::fs::remove_file(&stage1);
        std::fs::write(&stage1, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stage1, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // ...gc runs the stage1 from the store.
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert!(!marker.exists(), "gc ran a binary from the pod's root");
}
