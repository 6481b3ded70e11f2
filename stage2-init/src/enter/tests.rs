use super::*;

fn req(fields: &[&str]) -> Vec<u8> {
    message(&fields.iter().map(|f| f.as_bytes()).collect::<Vec<_>>())
}

#[test]
fn a_full_request_parses() {
    let r = parse_request(&req(&[
        MAGIC,
        "app",
        "web",
        "stdio",
        "pff",
        "winsize",
        "24",
        "80",
        "env",
        "1",
        "TERM=xterm",
        "argv",
        "2",
        "/bin/sh",
        "-c",
    ]))
    .unwrap();
    assert_eq!(r.app, "web");
    assert_eq!(r.stdio, [Slot::Pty, Slot::Passed, Slot::Passed]);
    assert_eq!(r.winsize, Some((24, 80)));
    assert_eq!(r.env, [OsString::from("TERM=xterm")]);
    assert_eq!(r.argv, [OsString::from("/bin/sh"), OsString::from("-c")]);
    assert!(r.wants_pty());
    assert_eq!(r.passed_fds(), 2);
}

#[test]
fn arguments_may_hold_any_byte_but_nul() {
    let r = parse_request(&req(&[
        MAGIC, "app", "a", "stdio", "fff", "argv", "2", "echo", "a\nb=c",
    ]))
    .unwrap();
    assert_eq!(r.argv[1], OsString::from("a\nb=c"));
    assert_eq!(r.winsize, None);
    assert!(r.env.is_empty());
}

#[test]
fn malformed_requests_say_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (&["nope"], "not an enter request"),
        (
            &[MAGIC, "app", "a", "argv", "1", "x"],
            "missing key \"stdio\"",
        ),
        (
            &[MAGIC, "stdio", "fff", "argv", "1", "x"],
            "missing key \"app\"",
        ),
        (
            &[MAGIC, "app", "a", "stdio", "ff", "argv", "1", "x"],
            "not three slots",
        ),
        (
            &[MAGIC, "app", "a", "stdio", "fxf", "argv", "1", "x"],
            "not p or f",
        ),
        (
            &[MAGIC, "app", "a", "stdio", "fff", "argv", "0"],
            "argv needs a command",
        ),
        (
            &[MAGIC, "app", "a", "stdio", "fff", "argv", "3", "x"],
            "truncated",
        ),
        (&[MAGIC, "app", "a", "app", "b"], "duplicate key \"app\""),
        (&[MAGIC, "app", "a", "bogus", "1"], "unknown key \"bogus\""),
        (
            &[
                MAGIC, "app", "a", "stdio", "fff", "env", "1", "=x", "argv", "1", "x",
            ],
            "not K=V",
        ),
        (
            &[
                MAGIC, "app", "a", "stdio", "ppp", "winsize", "70000", "1", "argv", "1", "x",
            ],
            "too large",
        ),
    ];
    for (fields, expected) in cases {
        let err = parse_request(&req(fields)).unwrap_err();
        assert!(err.contains(expected), "{fields:?}: {err}");
    }
    assert!(parse_request(b"rkt-enter-v1")
        .unwrap_err()
        .contains("truncated"));
}

#[test]
fn replies_and_signals() {
    assert_eq!(started_reply(42), b"started\x0042\x00");
    assert_eq!(error_reply("no"), b"error\x00no\x00");
    assert_eq!(exit_reply(WaitStatus::Exited(3)), b"exit\x003\x00");
    assert_eq!(exit_reply(WaitStatus::Signaled(9)), b"exit\x00137\x00");
    assert_eq!(parse_signal(b"signal\x0015\x00"), Some(15));
    assert_eq!(parse_signal(b"signal\x00x\x00"), None);
    assert_eq!(parse_signal(b"kill\x0015\x00"), None);
}

#[test]
fn the_request_environment_wins_over_the_apps() {
    let app = AppPlan {
        name: "a".into(),
        root: "/r".into(),
        uid: 0,
        gid: 0,
        groups: vec![],
        cwd: "/".into(),
        env: vec!["PATH=/bin".into(), "TERM=dumb".into()],
        exec: vec!["/x".into()],
        pre_start: vec![],
        post_stop: vec![],
        caps: None,
        cgroup_fds: vec![],
        oom_score_adj: None,
        no_new_privileges: false,
        seccomp: None,
    };
    let env = merged_env(&app, &["TERM=xterm".into()]);
    assert_eq!(
        env,
        [OsString::from("PATH=/bin"), OsString::from("TERM=xterm")]
    );
}

/// The request stage1's enter entrypoint is tested to write (docs/stage-contract.md).
#[test]
fn the_golden_request_reads_as_stage1_meant_it() {
    let r = parse_request(include_bytes!("../../../docs/golden/enter-request")).unwrap();
    assert_eq!(r.app, "web");
    assert_eq!(r.stdio, [Slot::Passed; 3]);
    assert_eq!(r.env, [OsString::from("TERM=xterm")]);
    assert_eq!(
        r.argv,
        [
            OsString::from("/bin/sh"),
            OsString::from("-c"),
            OsString::from("a\nb")
        ]
    );
}
