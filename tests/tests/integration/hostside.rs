//! Host-side inputs an attacker controls or can influence: the `--uuid-file-save` path, values
//! written into the pod's name-resolution files, and the capabilities an image asks for. Each
//! test builds the attack and shows it refused, with nothing left behind.
use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;

use rkt_tests::{require_root, ImageSpec, TestEnv};

const RETAIN: &str = "os/linux/capabilities-retain-set";
const REMOVE: &str = "os/linux/capabilities-remove-set";
/// rkt's 14 default capabilities as a /proc/self/status mask.
const DEFAULT_CAPS: &str = "00000000a80425fb";
/// The default without CAP_MKNOD (27).
const DEFAULT_WITHOUT_MKNOD: &str = "00000000a00425fb";
/// CAP_DAC_READ_SEARCH (2) alone.
const DAC_READ_SEARCH: &str = "0000000000000004";
const PRINT_CAPS: &str = "grep -E '^Cap(Eff|Bnd)' /proc/self/status";

fn field(output: &str, name: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// Effective and bounding sets of the app, which must agree for a root app.
#[track_caller]
fn caps_of(out: &rkt_tests::env::Run) -> String {
    let status = out.ok();
    let eff = field(status, "CapEff:");
    assert_eq!(eff, field(status, "CapBnd:"), "{out:?}");
    eff
}

/// Pods in any state.
#[track_caller]
fn pods(env: &TestEnv) -> usize {
    let list = env.rkt(&["list", "--no-legend"]);
    list.ok().lines().filter(|l| !l.trim().is_empty()).count()
}

/// No pod exists in any state.
#[track_caller]
fn assert_no_pods(env: &TestEnv) {
    assert_eq!(pods(env), 0, "a pod was left behind");
}

/// A refusal: exit 254 and exactly one line on stderr containing `needle`.
#[track_caller]
fn assert_refused(out: &rkt_tests::env::Run, needle: &str) {
    assert_eq!(out.code, 254, "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "one error line: {out:?}");
    assert!(out.stderr.contains(needle), "expected {needle:?}: {out:?}");
}

#[test]
fn uuid_file_save_never_follows_a_planted_symlink() {
    if !require_root("uuid_file_save_never_follows_a_planted_symlink") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::shell("example.com/uuid", "true"), "u.aci");
    // Someone who can write the directory plants a link to a file rkt (root) must not touch.
    let victim = env.work().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let link = env.work().join("pod.uuid");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let flag = format!("--uuid-file-save={}", link.display());
    let out = env.run(&[&flag, &img]);
    assert_refused(&out, "is not a regular file");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_no_pods(&env);

    // A dangling link must not create its target either.
    let missing = env.work().join("created-through-link");
    let dangling = env.work().join("dangling.uuid");
    std::os::unix::fs::symlink(&missing, &dangling).unwrap();
    let out = env.run(&[&format!("--uuid-file-save={}", dangling.display()), &img]);
    assert_refused(&out, "is not a regular file");
    assert!(!missing.exists());

    // A fifo would block a writer without a reader: refused at once.
    let fifo = env.work().join("fifo.uuid");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let out = env.run(&[&format!("--uuid-file-save={}", fifo.display()), &img]);
    assert_refused(&out, "is not a regular file");
    // A directory.
    let out = env.run(&[&format!("--uuid-file-save={}", env.work().display()), &img]);
    assert_refused(&out, "is not a regular file");
    assert_no_pods(&env);
}

#[test]
fn uuid_file_save_writes_in_place_for_a_reader_holding_the_file() {
    if !require_root("uuid_file_save_writes_in_place_for_a_reader_holding_the_file") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::shell("example.com/uuid", "true"), "u.aci");
    // A scheduler creates the file and keeps it open; the old content is longer than a UUID.
    let path = env.work().join("task.uuid");
    std::fs::write(&path, "stale content, longer than any pod UUID is\n").unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    let mut reader = std::fs::File::open(&path).unwrap();
    env.run(&[&format!("--uuid-file-save={}", path.display()), &img])
        .ok();
    assert_eq!(
        std::fs::metadata(&path).unwrap().ino(),
        inode,
        "file replaced"
    );
    let mut seen = String::new();
    reader.rewind().unwrap();
    reader.read_to_string(&mut seen).unwrap();
    assert_eq!(seen.len(), 36, "a UUID and no newline: {seen:?}");
    let list = env.rkt(&["list", "--no-legend", "--full"]);
    assert!(list.ok().contains(&seen), "{list:?}");

    // A missing file is created, readable by all, writable only by its owner.
    let fresh = env.work().join("fresh.uuid");
    env.run(&[&format!("--uuid-file-save={}", fresh.display()), &img])
        .ok();
    assert_eq!(TestEnv::wait_uuid(&fresh).len(), 36);
    let mode = std::fs::metadata(&fresh).unwrap().mode();
    assert!(mode & 0o777 & !0o644 == 0, "mode {mode:o}");
}

/// `(flag, hostile value)`: each would add a line of its own to /etc/resolv.conf, /etc/hosts
/// or /etc/hostname.
const INJECTIONS: [(&str, &str); 6] = [
    ("hostname", "a\nb"),
    ("hosts-entry", "1.2.3.4=a\n6.6.6.6 evil"),
    ("dns", "1.2.3.4\nnameserver 6.6.6.6"),
    ("dns-search", "x\nnameserver 6.6.6.6"),
    ("dns-opt", "ndots:1\nnameserver 6.6.6.6"),
    ("dns-domain", "corp\nnameserver 6.6.6.6"),
];

#[test]
fn name_resolution_flags_cannot_inject_lines() {
    if !require_root("name_resolution_flags_cannot_inject_lines") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell(
            "example.com/dns",
            "cat /etc/hostname; grep -h -e 6.6.6.6 -e db.example /etc/hosts /etc/resolv.conf; true",
        ),
        "d.aci",
    );
    for (flag, value) in INJECTIONS {
        let out = env.run(&[&format!("--{flag}={value}"), &img]);
        // The value is quoted with its newline escaped, so the error stays one line.
        let shown = format!("{value:?}");
        assert_refused(&out, &format!("--{flag}"));
        assert!(out.stderr.contains(&shown), "{flag}: {out:?}");
        assert_no_pods(&env);
    }
    // Whitespace inside a single-token value is refused too.
    let out = env.run(&["--dns-search=a b", &img]);
    assert_refused(&out, "contains whitespace");
    let out = env.run(&["--hostname=-bad..name", &img]);
    assert_refused(&out, "invalid --hostname \"-bad..name\"");
    assert_no_pods(&env);

    // run-prepared takes the same flags: the prepared pod is refused and stays prepared.
    let uuid = env
        .rkt(&["--insecure-options=image", "prepare", "--quiet", &img])
        .ok()
        .trim()
        .to_string();
    for (flag, value) in INJECTIONS {
        let out = env.rkt(&["run-prepared", &format!("--{flag}={value}"), &uuid]);
        assert_refused(&out, &format!("--{flag}"));
        assert!(out.stderr.contains(&format!("{value:?}")), "{out:?}");
    }
    let list = env.rkt(&["list", "--no-legend", "--full"]);
    assert!(list.ok().contains("prepared"), "{list:?}");

    // Well-formed values still work.
    let out = env.rkt(&[
        "run-prepared",
        "--hostname=web-1.example",
        "--hosts-entry=10.1.2.3=db.example",
        &uuid,
    ]);
    assert_eq!(out.ok(), "web-1.example\n10.1.2.3 db.example\n", "{out:?}");
}

#[test]
fn an_image_cannot_grant_itself_capabilities() {
    if !require_root("an_image_cannot_grant_itself_capabilities") {
        return;
    }
    let env = TestEnv::new();
    // CAP_DAC_READ_SEARCH lets open_by_handle_at read any file of the host's filesystems.
    let hostile = ImageSpec::shell("example.com/hostile-caps", PRINT_CAPS)
        .isolator(RETAIN, serde_json::json!({"set": ["CAP_DAC_READ_SEARCH"]}));
    let img = env.image(&hostile, "hostile.aci");
    let message = "image \"example.com/hostile-caps\" asks for capabilities beyond rkt's default set: \
                   CAP_DAC_READ_SEARCH; to grant them, add --caps-retain=CAP_DAC_READ_SEARCH after the image \
                   (or run with --insecure-options=capabilities)";
    assert_refused(&env.run(&[&img]), message);
    assert_refused(
        &env.rkt(&["--insecure-options=image", "prepare", &img]),
        message,
    );
    assert_no_pods(&env);

    // The operator grants it: the app gets exactly that.
    let out = env.run(&[&img, "--caps-retain=CAP_DAC_READ_SEARCH"]);
    assert_eq!(caps_of(&out), DAC_READ_SEARCH);
    // ... or lifts capability restriction altogether.
    let out = env.rkt(&["--insecure-options=image,capabilities", "run", &img]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn images_may_narrow_capabilities_and_operators_choose_them() {
    if !require_root("images_may_narrow_capabilities_and_operators_choose_them") {
        return;
    }
    let env = TestEnv::new();
    let retain = ImageSpec::shell("example.com/narrow-retain", PRINT_CAPS).isolator(
        RETAIN,
        serde_json::json!({"set": ["CAP_CHOWN", "CAP_KILL"]}),
    );
    let out = env.run(&[&env.image(&retain, "retain.aci")]);
    assert_eq!(caps_of(&out), "0000000000000021");
    let remove = ImageSpec::shell("example.com/narrow-remove", PRINT_CAPS).isolator(
        REMOVE,
        serde_json::json!({"set": ["CAP_MKNOD", "CAP_SYS_ADMIN"]}),
    );
    let out = env.run(&[&env.image(&remove, "remove.aci")]);
    assert_eq!(caps_of(&out), DEFAULT_WITHOUT_MKNOD);

    let plain = env.image(&ImageSpec::shell("example.com/plain", PRINT_CAPS), "p.aci");
    assert_eq!(caps_of(&env.run(&[&plain])), DEFAULT_CAPS);
    let out = env.run(&[&plain, "--caps-remove=CAP_MKNOD"]);
    assert_eq!(caps_of(&out), DEFAULT_WITHOUT_MKNOD);
    // rkt's spellings: any case, with or without CAP_; the old flag name still works.
    let out = env.run(&[&plain, "--caps-retain=net_admin,cap_chown"]);
    assert_eq!(caps_of(&out), "0000000000001001");
    let out = env.run(&[&plain, "--cap-retain=CAP_KILL"]);
    assert_eq!(field(out.ok(), "CapEff:"), "0000000000000020");
    assert!(
        out.stderr.contains("--cap-retain has been deprecated"),
        "{out:?}"
    );

    let before = pods(&env);
    let out = env.run(&[&plain, "--caps-retain=CAP_CHOWN", "--caps-remove=CAP_MKNOD"]);
    assert_refused(
        &out,
        "cannot use both --caps-retain and --caps-remove on the same image",
    );
    let out = env.run(&[&plain, "--caps-retain=CAP_CHOWN,CAP_BOGUS"]);
    assert_refused(&out, "unknown capability \"CAP_BOGUS\"");
    assert_eq!(pods(&env), before, "a refused run left a pod");
}

fn pod_manifest(env: &TestEnv, id: &str, app: Option<serde_json::Value>) -> String {
    let mut entry = serde_json::json!({"name": "caps", "image": {"id": id}});
    if let Some(app) = app {
        entry["app"] = app;
    }
    let pm = serde_json::json!({
        "acVersion": "0.8.11",
        "acKind": "PodManifest",
        "apps": [entry],
    });
    let path = env.work().join("pod.json");
    std::fs::write(&path, pm.to_string()).unwrap();
    format!("--pod-manifest={}", path.display())
}

#[test]
fn pod_manifests_trust_only_the_operators_app_sections() {
    if !require_root("pod_manifests_trust_only_the_operators_app_sections") {
        return;
    }
    let env = TestEnv::new();
    let hostile = ImageSpec::shell("example.com/hostile-caps", PRINT_CAPS)
        .isolator(RETAIN, serde_json::json!({"set": ["CAP_DAC_READ_SEARCH"]}));
    let id = env.fetch(&env.image(&hostile, "hostile.aci"));
    // Without an app section the image's app runs: checked like `rkt run IMAGE`.
    let flag = pod_manifest(&env, &id, None);
    let out = env.rkt(&["run", &flag]);
    assert_refused(
        &out,
        "image \"example.com/hostile-caps\" asks for capabilities beyond rkt's default set: CAP_DAC_READ_SEARCH",
    );
    assert_refused(&env.rkt(&["prepare", &flag]), "CAP_DAC_READ_SEARCH");
    assert_no_pods(&env);
    // An app section is the operator's own words.
    let app = serde_json::json!({
        "exec": ["/bin/sh", "-c", PRINT_CAPS],
        "user": "0",
        "group": "0",
        "isolators": [{"name": RETAIN, "value": {"set": ["CAP_DAC_READ_SEARCH"]}}],
    });
    let flag = pod_manifest(&env, &id, Some(app));
    assert_eq!(caps_of(&env.rkt(&["run", &flag])), DAC_READ_SEARCH);
}
