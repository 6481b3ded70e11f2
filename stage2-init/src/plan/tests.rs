use super::*;

/// Encodes fields the way stage1 writes them: each followed by a NUL.
fn encode<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(field);
        out.push(0);
    }
    out
}

/// The magic, then `text` split on whitespace, one field per word.
fn encode_words(text: &str) -> Vec<u8> {
    let words = text.split_whitespace().map(str::as_bytes);
    encode(std::iter::once(PLAN_MAGIC.as_bytes()).chain(words))
}

fn parse_words(text: &str) -> Result<Plan, PlanError> {
    parse(&encode_words(text))
}

fn err(text: &str) -> PlanError {
    parse_words(text).expect_err("plan should be rejected")
}

const MINIMAL: &str = "app a root /r uid 0 gid 0 cwd / exec 1 /bin/true";

fn os_vec(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

#[test]
fn full_plan() {
    let plan = parse_words(
        "stop-timeout 3 interactive 1 verbose 1 rkt-dir /tmp/rkt
         app web root /opt/stage2/web/rootfs uid 1000 gid 100 groups 2 10 20 cwd /srv
           env 2 PATH=/bin EMPTY= exec 2 /bin/httpd -f caps 2 10 0
           pre-start 1 /bin/a pre-start 2 /bin/b x post-stop 1 /bin/c
         app db root /r2 uid 0 gid 0 cwd / exec 1 /db",
    )
    .expect("valid plan");
    assert_eq!(plan.rkt_dir, PathBuf::from("/tmp/rkt"));
    assert_eq!(plan.stop_timeout, Duration::from_secs(3));
    assert!(plan.interactive);
    assert!(plan.verbose);
    assert_eq!(plan.apps.len(), 2);
    let web = &plan.apps[0];
    assert_eq!(web.name, "web");
    assert_eq!(web.root, PathBuf::from("/opt/stage2/web/rootfs"));
    assert_eq!((web.uid, web.gid), (1000, 100));
    assert_eq!(web.groups, vec![10, 20]);
    assert_eq!(web.cwd, PathBuf::from("/srv"));
    assert_eq!(web.env, os_vec(&["PATH=/bin", "EMPTY="]));
    assert_eq!(web.exec, os_vec(&["/bin/httpd", "-f"]));
    assert_eq!(
        web.pre_start,
        vec![os_vec(&["/bin/a"]), os_vec(&["/bin/b", "x"])]
    );
    assert_eq!(web.post_stop, vec![os_vec(&["/bin/c"])]);
    assert_eq!(web.caps.map(CapSet::bits), Some(1 << 10 | 1));
    let db = &plan.apps[1];
    assert_eq!(db.name, "db");
    assert!(db.groups.is_empty() && db.env.is_empty() && db.pre_start.is_empty());
    assert_eq!(db.caps, None, "no caps directive: leave capabilities alone");
}

#[test]
fn defaults() {
    let plan = parse_words(MINIMAL).expect("valid plan");
    assert_eq!(plan.rkt_dir, PathBuf::from(DEFAULT_RKT_DIR));
    let default_timeout = Duration::from_secs(DEFAULT_STOP_TIMEOUT_SECS.into());
    assert_eq!(plan.stop_timeout, default_timeout);
    assert!(!plan.interactive);
    assert!(!plan.verbose, "quiet unless asked");
    assert_eq!(plan.apps[0].caps, None);
}

#[test]
fn caps_are_a_set_of_numbers_up_to_63() {
    let caps = |list: &str| {
        let plan = parse_words(&format!("{MINIMAL} caps {list}")).expect("valid plan");
        plan.apps[0].caps.expect("caps given").bits()
    };
    assert_eq!(caps("1 0"), 1, "CAP_CHOWN only");
    assert_eq!(caps("0"), 0, "an empty list keeps no capability");
    assert_eq!(caps("3 63 40 0"), 1 << 63 | 1 << 40 | 1);
    assert_eq!(caps("3 21 21 21"), 1 << 21, "repeats are harmless");
    assert_eq!(CapSet::default().with(64), None);
    assert_eq!(CapSet::default().with(63).map(CapSet::bits), Some(1 << 63));
}

#[test]
fn rejects_bad_caps() {
    for bad in [
        "64",
        "100",
        "-1",
        "+1",
        "x",
        "CAP_CHOWN",
        "0x1",
        "4294967296",
    ] {
        let expected = PlanError::BadCap {
            app: "a".into(),
            value: bad.into(),
        };
        assert_eq!(
            err(&format!("{MINIMAL} caps 2 0 {bad}")),
            expected,
            "{bad:?}"
        );
    }
    let no_value = err(&format!("{MINIMAL} caps 2 1"));
    assert!(
        matches!(no_value, PlanError::Truncated { .. }),
        "{no_value:?}"
    );
    let huge_count = err(&format!("{MINIMAL} caps 4294967295"));
    assert!(matches!(huge_count, PlanError::Truncated { .. }));
    assert!(matches!(
        err(&format!("{MINIMAL} caps x")),
        PlanError::BadNumber { .. }
    ));
    let twice = err(&format!("{MINIMAL} caps 1 0 caps 0"));
    assert_eq!(
        twice,
        PlanError::DuplicateKey {
            key: "caps".into(),
            app: Some("a".into())
        }
    );
    // App level only.
    let pod_level = err(&format!("caps 1 0 {MINIMAL}"));
    assert!(matches!(pod_level, PlanError::UnknownKey { ref key, .. } if key == "caps"));
}

#[test]
fn verbose_is_a_pod_level_flag() {
    assert!(
        parse_words(&format!("verbose 1 {MINIMAL}"))
            .expect("valid")
            .verbose
    );
    assert!(
        !parse_words(&format!("verbose 0 {MINIMAL}"))
            .expect("valid")
            .verbose
    );
    let bad = err(&format!("verbose yes {MINIMAL}"));
    assert!(matches!(bad, PlanError::BadFlag { ref key, .. } if key == "verbose"));
    let twice = err(&format!("verbose 1 verbose 0 {MINIMAL}"));
    assert!(matches!(twice, PlanError::DuplicateKey { app: None, .. }));
    let in_app = err(&format!("{MINIMAL} verbose 1"));
    assert!(matches!(in_app, PlanError::PodKeyInApp { ref key, .. } if key == "verbose"));
    assert!(matches!(err("verbose"), PlanError::Truncated { .. }));
}

#[test]
fn fields_are_binary_safe() {
    let fields: [&[u8]; 16] = [
        PLAN_MAGIC.as_bytes(),
        b"app",
        b"a",
        b"root",
        b"/r\xff\x01 oot",
        b"uid",
        b"0",
        b"gid",
        b"0",
        b"cwd",
        b"/",
        b"exec",
        b"3",
        b"/x",
        b"",
        b"\n\t\xfe",
    ];
    let plan = parse(&encode(fields)).expect("valid plan");
    let app = &plan.apps[0];
    assert_eq!(app.root.as_os_str().as_encoded_bytes(), b"/r\xff\x01 oot");
    assert_eq!(app.exec[1], OsString::new());
    assert_eq!(app.exec[2].as_encoded_bytes(), b"\n\t\xfe");
}

#[test]
fn empty_lists_and_zero_timeout() {
    let plan = parse_words(&format!("stop-timeout 0 {MINIMAL} groups 0 env 0")).expect("valid");
    assert_eq!(plan.stop_timeout, Duration::ZERO);
    assert!(plan.apps[0].groups.is_empty() && plan.apps[0].env.is_empty());
}

#[test]
fn rejects_bad_framing() {
    assert!(matches!(parse(b""), Err(PlanError::Truncated { .. })));
    assert!(matches!(
        parse(PLAN_MAGIC.as_bytes()),
        Err(PlanError::Truncated { .. })
    ));
    let mut no_final_nul = encode_words(MINIMAL);
    no_final_nul.pop();
    assert!(matches!(
        parse(&no_final_nul),
        Err(PlanError::Truncated { .. })
    ));
    let other_magic = encode([&b"rkt-stage2-plan-v2"[..]]);
    assert!(matches!(
        parse(&other_magic),
        Err(PlanError::BadMagic { .. })
    ));
    assert_eq!(err(""), PlanError::NoApps);
    assert_eq!(err("stop-timeout 5"), PlanError::NoApps);
}

#[test]
fn rejects_truncated_directives() {
    for text in [
        "app",
        "stop-timeout",
        "app a root",
        "app a exec 3 /bin/x y",
        "app a groups 2 1",
        // A huge count must neither allocate nor panic.
        "app a env 4294967295",
    ] {
        assert!(matches!(err(text), PlanError::Truncated { .. }), "{text:?}");
    }
}

#[test]
fn rejects_unknown_and_misplaced_keys() {
    let bogus = err("bogus 1");
    assert!(matches!(bogus, PlanError::UnknownKey { ref key, field: 2 } if key == "bogus"));
    let in_app = err(&format!("{MINIMAL} user root"));
    assert!(matches!(in_app, PlanError::UnknownKey { .. }));
    let root_before_app = err(&format!("root /r {MINIMAL}"));
    assert!(matches!(root_before_app, PlanError::UnknownKey { .. }));
    let misplaced = err(&format!("{MINIMAL} stop-timeout 1"));
    assert!(matches!(misplaced, PlanError::PodKeyInApp { .. }));
}

#[test]
fn rejects_bad_numbers_and_flags() {
    for bad in ["-1", "+1", "1x", "4294967296", "0x10", "１"] {
        let text = MINIMAL.replace("uid 0", &format!("uid {bad}"));
        assert!(matches!(err(&text), PlanError::BadNumber { .. }), "{bad:?}");
    }
    let empty_uid: [&[u8]; 14] = [
        PLAN_MAGIC.as_bytes(),
        b"app",
        b"a",
        b"root",
        b"/r",
        b"uid",
        b"",
        b"gid",
        b"0",
        b"cwd",
        b"/",
        b"exec",
        b"1",
        b"/x",
    ];
    assert!(matches!(
        parse(&encode(empty_uid)),
        Err(PlanError::BadNumber { .. })
    ));
    let bad_timeout = err(&format!("stop-timeout ten {MINIMAL}"));
    assert!(matches!(bad_timeout, PlanError::BadNumber { .. }));
    let bad_flag = err(&format!("interactive yes {MINIMAL}"));
    assert!(matches!(bad_flag, PlanError::BadFlag { .. }));
    assert!(matches!(err("app a exec x"), PlanError::BadNumber { .. }));
    assert!(matches!(
        err("app a groups 1 x"),
        PlanError::BadNumber { .. }
    ));
}

#[test]
fn rejects_missing_required_keys() {
    for (present, missing) in [
        ("root /r", "root"),
        ("uid 0", "uid"),
        ("gid 0", "gid"),
        ("cwd /", "cwd"),
        ("exec 1 /bin/true", "exec"),
    ] {
        let text = MINIMAL.replace(present, "");
        let expected = PlanError::MissingKey {
            key: missing,
            app: "a".into(),
        };
        assert_eq!(err(&text), expected);
    }
    let no_args = MINIMAL.replace("exec 1 /bin/true", "exec 0");
    assert!(matches!(
        err(&no_args),
        PlanError::EmptyCommand { key: "exec", .. }
    ));
    let empty_hook = err(&format!("{MINIMAL} post-stop 0"));
    assert!(matches!(
        empty_hook,
        PlanError::EmptyCommand {
            key: "post-stop",
            ..
        }
    ));
}

#[test]
fn rejects_duplicates() {
    let apps = format!("{MINIMAL} {} {MINIMAL}", MINIMAL.replace("app a", "app b"));
    assert_eq!(err(&apps), PlanError::DuplicateApp { name: "a".into() });
    let key = err(&format!("{MINIMAL} uid 1"));
    assert!(matches!(key, PlanError::DuplicateKey { app: Some(_), .. }));
    let pod_key = err(&format!("stop-timeout 1 stop-timeout 2 {MINIMAL}"));
    assert!(matches!(pod_key, PlanError::DuplicateKey { app: None, .. }));
}

#[test]
fn rejects_bad_values() {
    for name in ["A", "a/b", "..", ".a", "a-", "-a", "a--b", "a_b"] {
        let text = MINIMAL.replace("app a", &format!("app {name}"));
        assert!(
            matches!(err(&text), PlanError::BadAppName { .. }),
            "{name:?}"
        );
    }
    for (good, bad) in [
        ("root /r", "root r"),
        ("cwd /", "cwd ."),
        ("1 /bin/true", "1 true"),
    ] {
        let text = MINIMAL.replace(good, bad);
        assert!(
            matches!(err(&text), PlanError::NotAbsolute { .. }),
            "{bad:?}"
        );
    }
    let hook = err(&format!("{MINIMAL} pre-start 1 hook"));
    assert!(matches!(
        hook,
        PlanError::NotAbsolute {
            key: "pre-start",
            ..
        }
    ));
    let rkt_dir = err(&format!("rkt-dir rkt {MINIMAL}"));
    assert!(matches!(rkt_dir, PlanError::NotAbsolute { app: None, .. }));
    for entry in ["NOEQUALS", "=v"] {
        let text = format!("{MINIMAL} env 1 {entry}");
        assert!(matches!(err(&text), PlanError::BadEnv { .. }), "{entry:?}");
    }
}

#[test]
fn error_messages_name_the_problem() {
    assert_eq!(err("bogus").to_string(), "unknown key \"bogus\" at field 2");
    assert_eq!(err("app a").to_string(), "app \"a\": missing key \"root\"");
    assert_eq!(
        err("app a uid x").to_string(),
        "uid: \"x\" is not a decimal number in range"
    );
    assert_eq!(
        err("app").to_string(),
        "truncated input: expected an app name"
    );
    assert_eq!(
        err(&format!("{MINIMAL} caps 1 64")).to_string(),
        "app \"a\": caps: \"64\" is not a capability number (0 to 63)"
    );
    assert_eq!(
        err(&format!("{MINIMAL} verbose 1")).to_string(),
        "pod-level key \"verbose\" inside app \"a\" (pod-level keys come before the first app)"
    );
}

/// The plan stage1's writer is tested against too (docs/stage-contract.md, "The plan").
#[test]
fn the_golden_plan_reads_as_stage1_meant_it() {
    let golden = include_bytes!("../../../docs/golden/init-plan");
    let plan = parse(golden).expect("the golden plan parses");
    assert_eq!(plan.stop_timeout, Duration::from_secs(10));
    assert!(!plan.interactive);
    assert!(plan.verbose);
    assert_eq!(plan.rkt_dir, PathBuf::from("/rkt"));
    let [web, db] = plan.apps.as_slice() else {
        panic!("two apps: {:?}", plan.apps);
    };
    assert_eq!(web.name, "web");
    assert_eq!(web.root, PathBuf::from("/opt/stage2/web/rootfs"));
    assert_eq!((web.uid, web.gid), (1000, 100));
    assert_eq!(web.groups, [100, 2048]);
    assert_eq!(web.cwd, PathBuf::from("/srv"));
    assert_eq!(
        web.env,
        os_vec(&[
            "PATH=/bin",
            "GREETING=hello\nLD_PRELOAD=/evil.so",
            "AC_APP_NAME=web"
        ])
    );
    assert_eq!(web.exec, os_vec(&["/bin/httpd", "-f", "two words"]));
    assert_eq!(web.pre_start, vec![os_vec(&["/bin/prepare", "x"])]);
    assert_eq!(web.post_stop, vec![os_vec(&["/bin/cleanup"])]);
    let caps = [0, 10, 27]
        .into_iter()
        .fold(CapSet::default(), |set, c| set.with(c).expect("small"));
    assert_eq!(web.caps, Some(caps));
    assert_eq!(db.name, "db");
    assert_eq!(db.exec, os_vec(&["/bin/db"]));
    assert_eq!(db.caps, None);
    assert!(db.env.is_empty() && db.groups.is_empty());
}

#[test]
fn confinement_keys() {
    let plan = parse_words(
        "app web root /r uid 1000 gid 1000 cwd / exec 1 /x \
         cgroup-fds 2 7 8 oom-score-adj -500 no-new-privileges 1 seccomp /rkt/run/seccomp/web",
    )
    .unwrap();
    let app = &plan.apps[0];
    assert_eq!(app.cgroup_fds, vec![7, 8]);
    assert_eq!(app.oom_score_adj, Some(-500));
    assert!(app.no_new_privileges);
    assert_eq!(
        app.seccomp.as_deref(),
        Some(std::path::Path::new("/rkt/run/seccomp/web"))
    );
    let plain = parse_words("app web root /r uid 0 gid 0 cwd / exec 1 /x").unwrap();
    assert_eq!(plain.apps[0].cgroup_fds, Vec::<i32>::new());
    assert!(!plain.apps[0].no_new_privileges && plain.apps[0].seccomp.is_none());
    for bad in [
        "oom-score-adj 1001",
        "oom-score-adj --5",
        "oom-score-adj x",
        "no-new-privileges 2",
    ] {
        let text = format!("app web root /r uid 0 gid 0 cwd / exec 1 /x {bad}");
        assert!(parse_words(&text).is_err(), "{bad}");
    }
}
