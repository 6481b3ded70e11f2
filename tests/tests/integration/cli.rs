//! The command line as rkt's users and scripts meet it: help, completion, exit codes for
//! missing commands, the root check, a closed stdout, and `rkt enter`'s environment and
//! errors.
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use rkt_tests::{require_root, ImageSpec, TestEnv};

#[test]
fn help_lists_every_flag_with_its_default() {
    if !require_root("help_lists_every_flag_with_its_default") {
        return;
    }
    let env = TestEnv::new();
    let help = env.rkt(&["run", "--help"]);
    let text = help.ok();
    assert_eq!(text.matches("Usage:").count(), 1, "{text}");
    for flag in [
        "--volume",
        "--mount",
        "--exec",
        "--caps-retain",
        "--set-env-file",
        "--net",
        "--uuid-file-save",
    ] {
        assert!(text.contains(flag), "{flag} missing:\n{text}");
    }
    assert!(text.contains("[default: new]"), "{text}");
    let prepare = env.rkt(&["prepare", "--help"]);
    assert!(prepare.ok().contains("--quiet"), "{prepare:?}");
    assert!(!prepare.stdout.contains("--interactive"));
    let status = env.rkt(&["status", "--help"]);
    assert!(status.ok().contains("--wait-ready"), "{status:?}");
    let gc = env.rkt(&["gc", "--help"]);
    assert!(gc.ok().contains("[default: 30m]"), "{gc:?}");
}

#[test]
fn completion_scripts_cover_the_image_list_commands() {
    if !require_root("completion_scripts_cover_the_image_list_commands") {
        return;
    }
    let env = TestEnv::new();
    let bash = env.rkt(&["completion", "bash"]);
    let script = bash.ok();
    assert!(script.contains("complete -F _rkt"), "{script}");
    assert!(
        script.contains("--caps-retain"),
        "run's flags are completed"
    );
    let zsh = env.rkt(&["completion", "zsh"]);
    assert!(zsh.ok().starts_with("#compdef rkt"), "{zsh:?}");
    let fish = env.rkt(&["completion", "fish"]);
    assert_eq!(fish.code, 254, "{fish:?}");
    assert!(fish.stderr.contains("fish"), "{fish:?}");
}

#[test]
fn missing_commands_help_and_version() {
    if !require_root("missing_commands_help_and_version") {
        return;
    }
    let env = TestEnv::new();
    // `env.rkt` always passes --dir: rkt --dir=X alone is the missing command.
    let none = env.rkt(&[]);
    assert_eq!(none.code, 2, "{none:?}");
    assert_eq!(none.stderr, "rkt: missing command\n");
    assert!(none.stdout.contains("Usage: rkt"), "{none:?}");
    let image = env.rkt(&["image"]);
    assert_eq!(image.code, 0, "{image:?}");
    assert!(image.stdout.contains("cat-manifest"), "{image:?}");
    let version = env.rkt(&["version", "extra", "--args"]);
    assert!(version.ok().starts_with("rkt Version: "), "{version:?}");
}

#[test]
fn a_closed_stdout_ends_rkt_quietly() {
    if !require_root("a_closed_stdout_ends_rkt_quietly") {
        return;
    }
    let env = TestEnv::new();
    for i in 0..20 {
        env.fetch(&env.image(
            &ImageSpec::shell(&format!("example.com/pipe{i}"), "true"),
            &format!("p{i}.aci"),
        ));
    }
    let rkt = rkt_tests::env::rkt_bin();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --dir={} image list --format=json-pretty | true; echo ${{PIPESTATUS:-done}}",
            rkt.display(),
            env.data_dir().display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn root_only_commands_say_so_before_reading_their_arguments() {
    if !require_root("root_only_commands_say_so_before_reading_their_arguments") {
        return;
    }
    let env = TestEnv::new();
    // A copy anyone may execute, wherever the build tree is.
    let rkt = env.work().join("rkt");
    std::fs::copy(rkt_tests::env::rkt_bin(), &rkt).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rkt, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(env.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(env.work(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for args in [
        &["enter"][..],
        &["enter", "--app=x", "not-a-uuid"],
        &["run", "no-such-image"],
        &["prepare"],
        &["run-prepared"],
        &["rm", "x"],
        &["gc"],
    ] {
        let out = Command::new(&rkt)
            .arg("--dir=/nonexistent")
            .args(args)
            .uid(65534)
            .gid(65534)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(254), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.ends_with("cannot run as unprivileged user\n"),
            "{args:?}: {stderr}"
        );
    }
    // Commands anyone may use still work.
    let out = Command::new(&rkt)
        .arg("version")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn enter_keeps_the_callers_term_and_explains_a_missing_command() {
    if !require_root("enter_keeps_the_callers_term_and_explains_a_missing_command") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/enterme", "sleep 300"),
        "e.aci",
    );
    let uuid_file = env.work().join("uuid");
    let mut run = env
        .cmd(&[
            "--insecure-options=image",
            "run",
            &format!("--uuid-file-save={}", uuid_file.display()),
            &img,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let uuid = TestEnv::wait_uuid(&uuid_file);
    assert!(TestEnv::wait_for(
        std::time::Duration::from_secs(20),
        || { env.rkt(&["enter", &uuid, "/bin/true"]).code == 0 }
    ));
    let term = env
        .cmd(&["enter", &uuid, "/bin/sh", "-c", "echo $TERM"])
        .env("TERM", "xterm-256color")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&term.stdout), "xterm-256color\n");
    let default = env
        .cmd(&["enter", &uuid, "/bin/sh", "-c", "echo $TERM"])
        .env_remove("TERM")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&default.stdout), "vt100\n");
    // busybox images have no /bin/bash, rkt enter's default command.
    let bash = env.rkt(&["enter", &uuid]);
    assert_eq!(bash.code, 254, "{bash:?}");
    assert!(
        bash.stderr
            .contains("no command specified, assuming \"/bin/bash\""),
        "{bash:?}"
    );
    assert!(bash.stderr.contains("cannot run \"/bin/bash\""), "{bash:?}");
    assert!(
        bash.stderr.contains("No such file or directory"),
        "{bash:?}"
    );
    env.rkt(&["stop", "--force", &uuid]).ok();
    run.wait().unwrap();
}
