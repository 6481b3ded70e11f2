use super::*;

const HYBRID_CGROUP: &str = "\
9:name=systemd:/
5:devices:/
4:memory:/batch/job1
2:cpu,cpuacct:/
0::/
";

const HYBRID_MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:13 - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/devices rw,nosuid shared:14 - cgroup cgroup rw,devices
";

#[test]
fn detects_hybrid_v1_and_v2_layouts() {
    let l = Layout::parse(HYBRID_CGROUP, HYBRID_MOUNTS);
    assert_eq!(l.kind(), Kind::Hybrid);
    assert_eq!(l.hierarchies.len(), 5);
    let mem = l.v1("memory").unwrap();
    assert_eq!(mem.own, PathBuf::from("/sys/fs/cgroup/memory/batch/job1"));
    assert_eq!(
        l.v1("cpuacct").unwrap().mount,
        PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
    );
    assert_eq!(
        l.v2().unwrap().own,
        PathBuf::from("/sys/fs/cgroup/unified/")
    );

    let v1 = Layout::parse(
        "4:memory:/\n",
        "33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
    );
    assert_eq!(v1.kind(), Kind::V1);

    // Pure v2 inside a container whose cgroup mount shows only its own subtree.
    let v2 = Layout::parse(
        "0::/user.slice/session-2.scope\n",
        "40 1 0:40 /user.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
    );
    assert_eq!(v2.kind(), Kind::V2);
    assert_eq!(
        v2.hierarchies[0].own,
        PathBuf::from("/sys/fs/cgroup/session-2.scope")
    );
    assert_eq!(Layout::parse("", "").kind(), Kind::None);
}

#[test]
fn mount_points_with_escapes_are_decoded() {
    let l = Layout::parse(
        "4:memory:/\n",
        "33 30 0:29 / /mnt/cg\\040mem rw - cgroup cgroup rw,memory\n",
    );
    assert_eq!(l.hierarchies[0].mount, PathBuf::from("/mnt/cg mem"));
}

fn fake_v1(root: &Path) -> Layout {
    let mut hs = Vec::new();
    for ctrls in [
        &["memory"][..],
        &["cpu", "cpuacct"],
        &["devices"],
        &["cpuset"],
    ] {
        let mount = root.join(ctrls.join(","));
        fs::create_dir_all(&mount).unwrap();
        hs.push(Hierarchy {
            mount: mount.clone(),
            controllers: ctrls.iter().map(|s| s.to_string()).collect(),
            v2: false,
            own: mount,
        });
    }
    fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
    fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
    Layout { hierarchies: hs }
}

fn fake_v2(root: &Path, controllers: &str) -> Layout {
    let own = root.join("unified/job");
    fs::create_dir_all(&own).unwrap();
    fs::write(own.join("cgroup.controllers"), controllers).unwrap();
    Layout {
        hierarchies: vec![Hierarchy {
            mount: root.join("unified"),
            controllers: Vec::new(),
            v2: true,
            own,
        }],
    }
}

fn web() -> AppLimits {
    AppLimits {
        name: "web".into(),
        memory_bytes: Some(128 << 20),
        cpu_milli: Some(750),
        cpu_shares: Some(2048),
        devices: Some(vec!["c 10:200 rw".into()]),
    }
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn v1_limits_go_to_each_controllers_app_cgroup() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = fake_v1(tmp.path());
    let (cg, warnings) = create(&layout, "u-1", &[web()]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let pod = pod_cgroup_name("u-1");
    let app = |h: &str| {
        tmp.path()
            .join(h)
            .join(&pod)
            .join("system.slice/web.service")
    };
    assert_eq!(
        read(app("memory").join("memory.limit_in_bytes")),
        "134217728"
    );
    assert_eq!(read(app("cpu,cpuacct").join("cpu.cfs_quota_us")), "75000");
    assert_eq!(read(app("cpu,cpuacct").join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(app("cpu,cpuacct").join("cpu.shares")), "2048");
    let allow = read(app("devices").join("devices.allow"));
    assert!(allow.ends_with("c 10:200 rw"), "{allow}");
    assert!(allow.starts_with("c 1:3 rwm"), "{allow}");
    assert_eq!(read(app("devices").join("devices.deny")), "a");
    // Nothing is enforced through cpuset: no cgroup there.
    assert!(!tmp.path().join("cpuset").join(&pod).exists());
    assert_eq!(cg.pod_dirs.len(), 3);
    assert_eq!(cg.app_procs[0].len(), 3);
    assert!(cg.init_procs[0].ends_with(format!("{pod}/init.scope/tasks")));
    assert_eq!(cg.app_memory[0], Some((app("memory"), false)));
    remove_tree(&cg.pod_dirs[0]).unwrap_err(); // fake dirs hold files: not a cgroupfs
}

#[test]
fn v2_limits_use_v2_files_and_delegate_top_down() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = fake_v2(tmp.path(), "cpuset cpu io memory pids\n");
    let (cg, warnings) = create(&layout, "u-2", &[web()]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let own = tmp.path().join("unified/job");
    let pod = own.join(pod_cgroup_name("u-2"));
    assert_eq!(read(own.join("cgroup.subtree_control")), "+memory +cpu");
    assert_eq!(read(pod.join("cgroup.subtree_control")), "+memory +cpu");
    let app = pod.join("system.slice/web.service");
    assert_eq!(read(app.join("memory.max")), "134217728");
    assert_eq!(read(app.join("cpu.max")), "75000 100000");
    assert_eq!(
        read(app.join("cpu.weight")),
        shares_to_weight(2048).to_string()
    );
    assert_eq!(cg.app_memory[0], Some((app, true)));
}

#[test]
fn missing_controllers_are_warnings_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = fake_v2(tmp.path(), "pids\n");
    let (_, warnings) = create(&layout, "u-3", &[web()]).unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("memory"));
    assert!(warnings[1].contains("cpu"));
    // Without limits, nothing to warn about.
    let plain = AppLimits {
        name: "db".into(),
        ..AppLimits::default()
    };
    let (_, warnings) = create(&layout, "u-4", &[plain]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn weights_follow_the_usual_conversion() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
}

#[test]
fn oom_kills_are_read_from_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    )
    .unwrap();
    assert!(oom_killed(tmp.path(), true));
    fs::write(
        tmp.path().join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    )
    .unwrap();
    assert!(!oom_killed(tmp.path(), false));
}

#[test]
fn the_record_may_only_name_this_pods_scope() {
    let layout = Layout::parse(HYBRID_CGROUP, HYBRID_MOUNTS);
    let name = pod_cgroup_name("abc");
    let good = format!("/sys/fs/cgroup/memory/batch/job1/{name}\n/sys/fs/cgroup/unified/{name}\n");
    assert_eq!(recorded_dirs(&good, "abc", &layout).unwrap().len(), 2);
    for bad in [
        "/sys/fs/cgroup/memory".to_string(),
        format!("/etc/{name}"),
        format!("/sys/fs/cgroup/memory/../../../etc/{name}"),
        format!("/sys/fs/cgroup/memory/{}", pod_cgroup_name("other")),
    ] {
        assert!(recorded_dirs(&bad, "abc", &layout).is_err(), "{bad}");
    }
}

#[test]
fn hybrid_hosts_limit_through_v1_and_track_in_the_unified_hierarchy() {
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = fake_v1(tmp.path());
    // cgroup2 mounted beside the v1 controllers, with no controller of its own.
    let unified = fake_v2(tmp.path(), "\n");
    layout.hierarchies.extend(unified.hierarchies);
    assert_eq!(layout.kind(), Kind::Hybrid);
    let (cg, warnings) = create(&layout, "u-5", &[web()]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let pod = pod_cgroup_name("u-5");
    let app = |h: &str| {
        tmp.path()
            .join(h)
            .join(&pod)
            .join("system.slice/web.service")
    };
    assert_eq!(
        read(app("memory").join("memory.limit_in_bytes")),
        "134217728"
    );
    let v2_app = tmp
        .path()
        .join("unified/job")
        .join(&pod)
        .join("system.slice/web.service");
    assert!(
        !v2_app.join("memory.max").exists(),
        "v1 enforces memory here"
    );
    assert_eq!(cg.app_procs[0].len(), 2, "memory and cpu; cgroup2 apart");
    assert_eq!(cg.v2_apps, vec![v2_app.clone()]);
    assert!(
        !cg.devices_v1,
        "the eBPF program on cgroup2 carries the device policy"
    );
    assert_eq!(cg.app_memory[0], Some((app("memory"), false)));
}
