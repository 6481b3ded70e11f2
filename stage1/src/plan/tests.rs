//! The planner's rules, without root.
use super::*;
use aci::schema::{EnvVar, EventHandler};

fn app(env: &[(&str, &str)]) -> App {
    App {
        exec: vec!["sh".into(), "-c".into(), "true".into()],
        user: "0".into(),
        group: "0".into(),
        environment: env
            .iter()
            .map(|(n, v)| EnvVar {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        ..App::default()
    }
}

fn pod() -> PodSettings {
    PodSettings {
        hostname: "rkt-x".into(),
        has_rkt_hosts: false,
        append_hostname: false,
        has_rkt_resolv: false,
        metadata_url: None,
    }
}

#[test]
fn defaults_fill_only_what_the_image_leaves_unset() {
    let env = compose_env("web", &app(&[("HOME", "/srv"), ("FOO", "bar")]));
    let keys: Vec<_> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "PATH",
            "SHELL",
            "USER",
            "LOGNAME",
            "HOME",
            "FOO",
            "AC_APP_NAME"
        ]
    );
    assert!(env.contains(&("HOME".into(), "/srv".into())));
    assert_eq!(env.last().unwrap(), &("AC_APP_NAME".into(), "web".into()));
}

#[test]
fn ac_app_name_cannot_be_overridden() {
    let env = compose_env("web", &app(&[("AC_APP_NAME", "evil")]));
    assert_eq!(env.iter().filter(|(k, _)| k == "AC_APP_NAME").count(), 1);
    assert!(env.contains(&("AC_APP_NAME".into(), "web".into())));
}

#[test]
fn exec_and_handlers_use_resolved_paths() {
    let mut a = app(&[]);
    a.event_handlers = vec![EventHandler {
        name: "pre-start".into(),
        exec: vec!["prep".into(), "x".into()],
    }];
    let facts = AppFacts {
        uid: 1000,
        gid: 100,
        exec_path: "/bin/sh".into(),
        handler_paths: [("prep".to_string(), "/usr/bin/prep".to_string())].into(),
        has_etc_hosts: true,
        caps: Some(vec![0]),
    };
    let plan = plan_app("web", &a, false, &facts, &pod(), &[]).unwrap();
    assert_eq!(plan.launch.exec, ["/bin/sh", "-c", "true"]);
    assert_eq!(
        plan.launch.pre_start,
        vec![vec!["/usr/bin/prep".to_string(), "x".into()]]
    );
    assert_eq!(plan.launch.root, "/opt/stage2/web/rootfs");
    assert_eq!(plan.launch.cwd, "/");
    assert_eq!((plan.launch.uid, plan.launch.gid), (1000, 100));
    assert_eq!(plan.launch.caps, Some(vec![0]));
}

#[test]
fn hosts_file_only_when_the_image_has_none_or_entries_were_given() {
    let a = app(&[]);
    let mut facts = AppFacts {
        exec_path: "/bin/sh".into(),
        has_etc_hosts: true,
        ..AppFacts::default()
    };
    let targets = |p: &AppPlan| {
        p.mounts
            .iter()
            .map(|m| m.target.clone())
            .collect::<Vec<_>>()
    };
    let with_hosts = plan_app("a", &a, false, &facts, &pod(), &[]).unwrap();
    assert!(!targets(&with_hosts).contains(&"/etc/hosts".to_string()));
    facts.has_etc_hosts = false;
    let without = plan_app("a", &a, false, &facts, &pod(), &[]).unwrap();
    assert!(without.mounts.iter().any(|m| m.target == "/etc/hosts"
        && m.source == MountSource::Stage1Path("/rkt/run/hosts".into())));
    facts.has_etc_hosts = true;
    let mut p = pod();
    p.has_rkt_hosts = true;
    p.has_rkt_resolv = true;
    let entries = plan_app("a", &a, false, &facts, &p, &[]).unwrap();
    assert!(entries.mounts.iter().any(|m| m.target == "/etc/hosts"
        && m.source == MountSource::Stage1Path("/etc/rkt-hosts".into())));
    assert!(targets(&entries).contains(&"/etc/resolv.conf".to_string()));
}

#[test]
fn an_app_without_exec_is_an_error() {
    let mut a = app(&[]);
    a.exec.clear();
    assert!(plan_app("a", &a, false, &AppFacts::default(), &pod(), &[]).is_err());
}

fn vol(name: &str, kind: &str, path: &str, ro: bool) -> VolumeMount {
    VolumeMount {
        mount: aci::schema::AppMount {
            volume: aci::schema::Volume {
                name: name.into(),
                kind: kind.into(),
                source: (kind == "host").then(|| "/srv".to_string()),
                recursive: Some(false),
                ..Default::default()
            },
            path: path.into(),
            read_only: ro,
            implicit: false,
        },
        source_is_file: false,
        source_is_device: false,
    }
}

fn targets(p: &AppPlan) -> Vec<&str> {
    p.mounts.iter().map(|m| m.target.as_str()).collect()
}

#[test]
fn volumes_mount_in_path_order_whatever_order_they_come_in() {
    let facts = AppFacts {
        exec_path: "/bin/sh".into(),
        has_etc_hosts: true,
        ..AppFacts::default()
    };
    let plan = plan_app(
        "a",
        &app(&[]),
        false,
        &facts,
        &pod(),
        &[
            vol("deeper", "empty", "/data/sub/x", false),
            vol("sibling", "empty", "/data2", false),
            vol("b", "empty", "/data/sub", false),
            vol("root-level", "empty", "/b", false),
            vol("a", "host", "/data", true),
            vol("again", "empty", "/data/sub", false),
        ],
    )
    .unwrap();
    assert_eq!(
        targets(&plan)[4..],
        [
            "/b",
            "/data",
            "/data/sub",
            "/data/sub",
            "/data/sub/x",
            "/data2"
        ]
    );
    let names: Vec<_> = plan.mounts[6..8].iter().map(|m| m.source.clone()).collect();
    assert_eq!(
        names,
        [
            MountSource::Shared("b".into()),
            MountSource::Shared("again".into())
        ],
        "the same target keeps the given order"
    );
    assert_eq!(
        mount_parents(&plan.mounts)[4..],
        [None, None, Some(5), Some(5), Some(7), None],
        "a mount lies in the last earlier mount of a parent directory"
    );
}

#[test]
fn mounts_inside_pod_dev_have_dev_as_parent() {
    let facts = AppFacts {
        exec_path: "/bin/sh".into(),
        has_etc_hosts: true,
        ..AppFacts::default()
    };
    let plan = plan_app(
        "a",
        &app(&[]),
        false,
        &facts,
        &pod(),
        &[vol("fuse", "host", "/dev/fuse", false)],
    )
    .unwrap();
    let dev = plan.mounts.iter().position(|m| m.target == "/dev").unwrap();
    let parents = mount_parents(&plan.mounts);
    assert_eq!(parents[plan.mounts.len() - 1], Some(dev));
    assert_eq!(parents[dev], None);
}

#[test]
fn a_volume_on_or_under_sys_replaces_sysfs() {
    let facts = AppFacts {
        exec_path: "/bin/sh".into(),
        has_etc_hosts: true,
        ..AppFacts::default()
    };
    let sysfs = |volumes: &[VolumeMount]| {
        plan_app("a", &app(&[]), false, &facts, &pod(), volumes)
            .unwrap()
            .mounts
            .iter()
            .any(|m| m.source == MountSource::Sysfs)
    };
    assert!(sysfs(&[]));
    assert!(sysfs(&[vol("s", "empty", "/system", false)]));
    assert!(sysfs(&[vol("s", "empty", "/srv/sys", false)]));
    assert!(!sysfs(&[vol("s", "empty", "/sys", false)]));
    assert!(!sysfs(&[vol("s", "host", "/sys/class", false)]));
}

#[test]
fn the_primary_group_leads_the_supplementary_groups() {
    let mut a = app(&[]);
    let facts = AppFacts {
        gid: 100,
        exec_path: "/bin/sh".into(),
        ..AppFacts::default()
    };
    let groups = |a: &App| {
        plan_app("a", a, false, &facts, &pod(), &[])
            .unwrap()
            .launch
            .groups
    };
    assert_eq!(groups(&a), [100]);
    a.supplementary_gids = vec![1024, 2048];
    assert_eq!(groups(&a), [100, 1024, 2048]);
    a.supplementary_gids = vec![2048, 100, 1024, 2048];
    assert_eq!(groups(&a), [100, 2048, 1024], "each group once");
}

#[test]
fn hosts_fallback_is_rkts_default_with_the_hostname() {
    let hosts = hosts_fallback("rkt-1234");
    let lines: Vec<&str> = hosts.lines().collect();
    assert_eq!(lines[0], "# This is the default rkt /etc/hosts");
    assert_eq!(
        lines[1],
        "127.0.0.1 localhost localhost.domain localhost4 localhost4.localdomain4 rkt-1234"
    );
    assert_eq!(lines.len(), DEFAULT_HOSTS.lines().count());
    assert!(hosts.ends_with("ff02::3 ip6-allhosts\n"), "{hosts}");
}

#[test]
fn hosts_entries_join_the_first_line_of_their_address() {
    let stage0 = "127.0.0.1 localhost\n\n\n# Added by rkt run --hosts-entry\n127.0.0.1 db\n";
    assert_eq!(
        add_hosts_entry(stage0, "127.0.0.1", "pod"),
        "127.0.0.1 localhost pod\n\n\n# Added by rkt run --hosts-entry\n127.0.0.1 db\n"
    );
    assert_eq!(
        add_hosts_entry("::1 localhost6", "127.0.0.1", "pod"),
        "::1 localhost6\n127.0.0.1\tpod\n",
        "a new line when the address has none"
    );
    assert_eq!(
        add_hosts_entry("127.0.0.10 x\n", "127.0.0.1", "pod"),
        "127.0.0.10 x\n127.0.0.1\tpod\n",
        "the whole first field must match"
    );
}

#[test]
fn volumes_mount_after_the_base_mounts_parents_first() {
    let facts = AppFacts {
        exec_path: "/bin/sh".into(),
        ..AppFacts::default()
    };
    let plan = plan_app(
        "a",
        &app(&[]),
        false,
        &facts,
        &pod(),
        &[
            vol("deep", "empty", "/data/sub", false),
            vol("top", "host", "/data", true),
        ],
    )
    .unwrap();
    let n = plan.mounts.len();
    assert_eq!(plan.mounts[n - 2].target, "/data");
    assert_eq!(
        plan.mounts[n - 2].source,
        MountSource::Host {
            path: "/srv".into(),
            recursive: false,
            device: false,
        }
    );
    assert!(plan.mounts[n - 2].read_only && !plan.mounts[n - 2].recursive);
    assert_eq!(
        plan.mounts[n - 1].source,
        MountSource::Shared("deep".into())
    );
}

/// The plan both sides are tested against (docs/stage-contract.md, "The plan").
fn golden_launches() -> Vec<AppLaunch> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        AppLaunch {
            name: "web".into(),
            root: "/opt/stage2/web/rootfs".into(),
            uid: 1000,
            gid: 100,
            groups: vec![100, 2048],
            cwd: "/srv".into(),
            env: vec![
                ("PATH".into(), "/bin".into()),
                ("GREETING".into(), "hello\nLD_PRELOAD=/evil.so".into()),
                ("AC_APP_NAME".into(), "web".into()),
            ],
            exec: s(&["/bin/httpd", "-f", "two words"]),
            pre_start: vec![s(&["/bin/prepare", "x"])],
            post_stop: vec![s(&["/bin/cleanup"])],
            caps: Some(vec![0, 10, 27]),
            confine: Default::default(),
        },
        AppLaunch {
            name: "db".into(),
            root: "/opt/stage2/db/rootfs".into(),
            uid: 0,
            gid: 0,
            groups: vec![],
            cwd: "/".into(),
            env: vec![],
            exec: s(&["/bin/db"]),
            pre_start: vec![],
            post_stop: vec![],
            caps: None,
            confine: Default::default(),
        },
    ]
}

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/golden/init-plan");

#[test]
fn the_plan_writer_matches_the_golden_plan() {
    let written = init_plan(&golden_launches(), false, true, 10);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(GOLDEN, &written).unwrap();
    }
    let golden = std::fs::read(GOLDEN).expect("docs/golden/init-plan (BLESS=1 writes it)");
    assert_eq!(
        written, golden,
        "the plan format changed: update the contract and the reader"
    );
}

#[test]
fn init_plan_is_nul_separated() {
    let launch = AppLaunch {
        name: "a".into(),
        root: "/opt/stage2/a/rootfs".into(),
        uid: 0,
        gid: 0,
        groups: vec![5],
        cwd: "/".into(),
        env: vec![("A".into(), "b c".into())],
        exec: vec!["/bin/echo".into(), "hi\nthere".into()],
        pre_start: vec![],
        post_stop: vec![vec!["/bin/true".into()]],
        caps: Some(vec![0, 27]),
        confine: Default::default(),
    };
    let bytes = init_plan(&[launch], false, false, 10);
    let fields: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
    assert_eq!(fields[0], b"rkt-stage2-plan-v1");
    assert!(fields.contains(&&b"hi\nthere"[..]));
    assert!(fields.contains(&&b"A=b c"[..]));
    let caps = fields.iter().position(|f| *f == b"caps").unwrap();
    assert_eq!(&fields[caps + 1..caps + 4], [&b"2"[..], b"0", b"27"]);
    assert_eq!(*bytes.last().unwrap(), 0);
}
