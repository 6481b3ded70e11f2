//! The mount plan as data: order and hardening, checked without root (nothing is mounted;
//! only missing mount targets are created, in a temporary directory).
use super::*;
use crate::plan::{AppLaunch, AppMount};

struct Fixture {
    _tmp: tempfile::TempDir,
    pod_dir: PathBuf,
    s1root: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pod_dir = tmp.path().join("pod");
    let s1root = pod_dir.join("stage1/rootfs");
    fs::create_dir_all(s1root.join("opt/stage2/web/rootfs/bin")).expect("app root");
    Fixture {
        _tmp: tmp,
        pod_dir,
        s1root,
    }
}

fn app(mounts: Vec<AppMount>) -> AppPlan {
    AppPlan {
        launch: AppLaunch {
            name: "web".into(),
            root: "/opt/stage2/web/rootfs".into(),
            uid: 0,
            gid: 0,
            groups: vec![],
            cwd: "/".into(),
            env: vec![],
            exec: vec!["/bin/sh".into()],
            pre_start: vec![],
            post_stop: vec![],
            caps: None,
            confine: Default::default(),
        },
        mounts,
        read_only_rootfs: false,
    }
}

fn mount(source: MountSource, target: &str) -> AppMount {
    AppMount {
        source,
        target: target.into(),
        read_only: false,
        file: false,
        recursive: true,
    }
}

fn base_mounts() -> Vec<AppMount> {
    vec![
        mount(MountSource::Proc, "/proc"),
        mount(MountSource::PodDev, "/dev"),
        mount(
            MountSource::Host {
                path: "/dev/fuse".into(),
                recursive: false,
                device: true,
            },
            "/dev/fuse",
        ),
        mount(MountSource::Shared("data".into()), "/data"),
    ]
}

/// The ops as their descriptions, which name every source, target and flag.
fn plan(f: &Fixture, harden: bool, console: Option<ConsoleSlots>) -> Vec<String> {
    let layout = PodLayout {
        pod_dir: &f.pod_dir,
        s1root: &f.s1root,
        hostname: "rkt-test",
        ns: Namespaces {
            net: true,
            ipc: true,
            join_net: None,
        },
        console,
        harden,
        userns: None,
        userns_root: None,
        runtime: Vec::new(),
    };
    pod_ops(&layout, &[app(base_mounts())], None, true)
        .expect("plan")
        .iter()
        .map(|op| op.to_string())
        .collect()
}

fn position(ops: &[String], what: &str) -> usize {
    ops.iter()
        .position(|o| o.contains(what))
        .unwrap_or_else(|| panic!("no op with {what:?} in\n{}", ops.join("\n")))
}

#[test]
fn the_pod_starts_a_session_then_namespaces_then_mounts_and_ends_with_stage2_init() {
    let f = fixture();
    let ops = plan(&f, true, None);
    assert_eq!(ops[0], "set the parent-death signal");
    assert_eq!(ops[1], "start a new session");
    assert!(ops[2].starts_with("unshare namespaces"), "{}", ops[2]);
    assert!(
        ops[3].contains("MS_REC|MS_SLAVE"),
        "nothing propagates back: {}",
        ops[3]
    );
    let pivot = position(&ops, "pivot into");
    assert_eq!(pivot, ops.len() - 3);
    assert_eq!(ops[ops.len() - 2], "unblock signals");
    assert_eq!(ops[ops.len() - 1], "execute /stage2-init");
    // The app root is made a mount before anything is mounted in it.
    let root = f.s1root.join("opt/stage2/web/rootfs").display().to_string();
    let self_bind = position(&ops, &format!("bind-mount {root} on {root}"));
    assert!(self_bind < position(&ops, "mount proc on /proc in"));
}

#[test]
fn every_mount_is_nodev_except_single_device_binds_made_after_all_mounts() {
    let f = fixture();
    let ops = plan(&f, true, None);
    let s1root = f.s1root.display().to_string();
    let nodev = position(
        &ops,
        &format!("set attributes 0x4 and clear 0x0 on {s1root} (mount_setattr, AT_RECURSIVE)"),
    );
    let last_mount = ops
        .iter()
        .rposition(|o| o.starts_with("mount ") || o.starts_with("bind-mount "))
        .expect("mounts");
    assert!(nodev > last_mount, "nodev must see every mount");
    let allowed: Vec<&String> = ops[nodev + 1..]
        .iter()
        .filter(|o| o.contains("clear 0x4"))
        .collect();
    let allowed = allowed
        .iter()
        .map(|o| o.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for node in [
        "null", "zero", "full", "random", "urandom", "tty", "console", "pts",
    ] {
        assert!(
            allowed.contains(&format!("{s1root}/dev/{node} ")),
            "{node}: {allowed}"
        );
        assert!(
            allowed.contains(&format!("/dev/{node} in ")),
            "app's {node}: {allowed}"
        );
    }
    assert!(
        allowed.contains("/dev/fuse in "),
        "device volumes stay usable: {allowed}"
    );
    assert!(
        !allowed.contains("/data"),
        "empty volumes stay nodev: {allowed}"
    );
    assert!(!allowed.contains("/proc"), "{allowed}");
}

#[test]
fn proc_hardening_resolves_sources_and_targets_inside_the_app_root() {
    let f = fixture();
    let ops = plan(&f, true, None);
    let root = f.s1root.join("opt/stage2/web/rootfs").display().to_string();
    let proc_mount = position(&ops, "mount proc on /proc in");
    for p in READ_ONLY_PROC {
        let bind = position(&ops, &format!("bind-mount {p} in {root} on {p} in {root}"));
        assert!(bind > proc_mount, "{p} after /proc is mounted");
        assert!(ops[bind + 1].contains(&format!(
            "set attributes 0x1 and clear 0x0 on {p} in {root}"
        )));
    }
    for p in MASKED_PROC {
        position(&ops, &format!("bind-mount /dev/null on {p} in {root}"));
    }
}

#[test]
fn insecure_paths_drop_the_hardening_and_nodev() {
    let f = fixture();
    let ops = plan(&f, false, None);
    assert!(!ops.iter().any(|o| o.contains("/proc/sys in")), "{ops:?}");
    assert!(
        !ops.iter().any(|o| o.contains("set attributes 0x4")),
        "{ops:?}"
    );
}

#[test]
fn the_console_is_a_pod_pty_made_before_the_apps_bind_dev() {
    let f = fixture();
    let without = plan(&f, true, None);
    position(&without, "bind-mount /dev/null on ");
    let slots = ConsoleSlots {
        stdio: [true, true, false],
    };
    let ops = plan(&f, true, Some(slots));
    let console = position(&ops, "create the pod's console from");
    assert!(ops[console].contains("/dev/pts/ptmx"), "{}", ops[console]);
    assert!(console > position(&ops, "mount devpts on"));
    assert!(
        console < position(&ops, "on /dev in "),
        "apps' /dev binds carry the console"
    );
    assert!(position(&ops, "start a new session") < console);
}

fn layout(f: &Fixture) -> PodLayout<'_> {
    PodLayout {
        pod_dir: &f.pod_dir,
        s1root: &f.s1root,
        hostname: "rkt-test",
        ns: Namespaces {
            net: true,
            ipc: true,
            join_net: None,
        },
        console: None,
        harden: true,
        userns: None,
        userns_root: None,
        runtime: Vec::new(),
    }
}

#[test]
fn a_target_inside_another_mount_is_made_in_it_before_it_turns_read_only() {
    let f = fixture();
    let mut data = mount(MountSource::Shared("a".into()), "/data");
    data.read_only = true;
    let mounts = vec![
        mount(MountSource::PodDev, "/dev"),
        mount(
            MountSource::Host {
                path: "/dev/fuse".into(),
                recursive: false,
                device: true,
            },
            "/dev/fuse",
        ),
        data,
        mount(MountSource::Shared("b".into()), "/data/sub"),
    ];
    let ops: Vec<String> = pod_ops(&layout(&f), &[app(mounts)], None, false)
        .expect("plan")
        .iter()
        .map(|op| op.to_string())
        .collect();
    let root = f.s1root.join("opt/stage2/web/rootfs");
    let r = root.display().to_string();
    let bind_a = position(&ops, &format!("on /data in {r} (MS_BIND|MS_REC)"));
    let make_sub = position(
        &ops,
        &format!("create mount target /data/sub in {r} (a directory)"),
    );
    let read_only = position(
        &ops,
        &format!("set attributes 0x1 and clear 0x0 on /data in {r}"),
    );
    let bind_b = position(&ops, &format!("on /data/sub in {r}"));
    assert!(
        bind_a < make_sub && make_sub < read_only && read_only < bind_b,
        "{ops:#?}"
    );
    let make_fuse = position(&ops, &format!("create mount target /dev/fuse in {r}"));
    assert!(position(&ops, &format!("on /dev in {r}")) < make_fuse);
    assert!(make_fuse < position(&ops, "bind-mount /dev/fuse on"));
    // Only targets of the image itself are made beforehand.
    assert!(root.join("data").is_dir());
    assert!(
        !root.join("data/sub").exists(),
        "made in the volume, not the image"
    );
    assert!(!root.join("dev/fuse").exists());
    assert!(
        !ops.iter()
            .any(|o| o.contains("create mount target /data in")),
        "{ops:#?}"
    );
}
