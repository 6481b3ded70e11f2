//! Isolators as an app sees them and as the host sees them: cgroups with memory and CPU
//! limits, the OOM killer's verdict, the closed device policy, seccomp and no-new-privileges,
//! the capability flags, the OOM score, masked sysfs, and no cgroup left after the pod.
use std::path::{Path, PathBuf};

use rkt_tests::{require_root, ImageSpec, TestEnv};

use super::lifecycle::{spawn_run, wait_running};

fn field(output: &str, name: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// The pod's cgroup directories on the host, in every hierarchy.
fn pod_cgroups(uuid: &str) -> Vec<PathBuf> {
    let name = format!("machine-rkt\\x2d{uuid}.scope");
    let mut found = Vec::new();
    fn walk(dir: &Path, name: &str, depth: usize, found: &mut Vec<PathBuf>) {
        if depth > 6 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_str() == Some(name) {
                found.push(e.path());
            } else {
                walk(&e.path(), name, depth + 1, found);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), &name, 0, &mut found);
    found
}

/// The app's cgroup path in `hierarchy` (`memory`, or `` for cgroup2) from its
/// /proc/self/cgroup lines.
fn cgroup_of(proc_cgroup: &str, hierarchy: &str) -> Option<String> {
    proc_cgroup.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrl.split(',')
            .any(|c| c == hierarchy)
            .then(|| path.to_string())
            .or_else(|| (hierarchy.is_empty() && ctrl.is_empty()).then(|| path.to_string()))
    })
}

/// Where `hierarchy` is mounted on the host.
fn mount_of(hierarchy: &str) -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let point = left.split(' ').nth(4)?;
        let right: Vec<&str> = right.split(' ').collect();
        let ok = if hierarchy.is_empty() {
            right[0] == "cgroup2"
        } else {
            right[0] == "cgroup" && right.get(2)?.split(',').any(|o| o == hierarchy)
        };
        ok.then(|| PathBuf::from(point))
    })
}

/// The host directory of the cgroup an app printed, resolved the way the kernel shows it.
fn host_dir(hierarchy: &str, path: &str) -> PathBuf {
    let mount = mount_of(hierarchy).expect("hierarchy mounted");
    // Our own cgroup path shows the same prefix: the mount's root is the hierarchy's root.
    mount.join(path.trim_start_matches('/'))
}

/// How many eBPF device programs are attached to the cgroup2 directory `dir`.
fn device_programs(dir: &Path) -> u32 {
    #[repr(C)]
    struct Query {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        pad: u32,
    }
    let cgroup = std::fs::File::open(dir).unwrap();
    let mut ids = [0u32; 8];
    let mut q = Query {
        target_fd: std::os::fd::AsRawFd::as_raw_fd(&cgroup) as u32,
        attach_type: 6, // BPF_CGROUP_DEVICE
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        pad: 0,
    };
    // SAFETY: BPF_PROG_QUERY (16) on a live, zero-padded attr with room for 8 ids.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            16,
            &mut q as *mut Query,
            std::mem::size_of::<Query>() as u32,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    q.prog_cnt
}

#[test]
fn memory_and_cpu_limits_are_in_the_apps_cgroup_and_removed_with_the_pod() {
    if !require_root("memory_and_cpu_limits_are_in_the_apps_cgroup_and_removed_with_the_pod") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell(
            "example.com/limited",
            "cat /proc/self/cgroup > /tmp/cg; sleep 600",
        ),
        "limited.aci",
    );
    let (mut child, uuid) = spawn_run(
        &env,
        "limited",
        &[&img, "--memory=64Mi", "--cpu=250m", "--cpu-shares=512"],
    );
    wait_running(&env, &uuid);
    let proc_cgroup = env
        .rkt(&["enter", &uuid, "/bin/cat", "/tmp/cg"])
        .ok()
        .to_string();
    let scope = format!("machine-rkt\\x2d{uuid}.scope/system.slice/limited.service");
    // The hierarchies that enforce something, and cgroup2, which tracks every pod.
    for hierarchy in ["memory", "cpu", ""] {
        if mount_of(hierarchy).is_some() {
            let path = cgroup_of(&proc_cgroup, hierarchy).unwrap();
            assert!(path.ends_with(&scope), "{hierarchy}: {proc_cgroup}");
        }
    }
    // An entered command joins the app's cgroups too.
    let entered = env.rkt(&["enter", &uuid, "/bin/cat", "/proc/self/cgroup"]);
    assert_eq!(entered.ok(), proc_cgroup);
    // And gets the app's seccomp filter.
    let entered = env.rkt(&["enter", &uuid, "/bin/grep", "Seccomp:", "/proc/self/status"]);
    assert_eq!(field(entered.ok(), "Seccomp:"), "2", "{entered:?}");
    let read = |hierarchy: &str, file: &str| {
        let path = cgroup_of(&proc_cgroup, hierarchy).unwrap();
        std::fs::read_to_string(host_dir(hierarchy, &path).join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    if mount_of("memory").is_some() {
        assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "25000");
        assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu", "cpu.shares"), "512");
    } else {
        assert_eq!(read("", "memory.max"), "67108864");
        assert_eq!(read("", "cpu.max"), "25000 100000");
    }
    // On cgroup2 (hybrid hosts too) the device policy is an eBPF program on the app's cgroup.
    if let (Some(path), Some(_)) = (cgroup_of(&proc_cgroup, ""), mount_of("")) {
        assert_eq!(device_programs(&host_dir("", &path)), 1);
    }
    assert!(!pod_cgroups(&uuid).is_empty());
    env.rkt(&["stop", "--force", &uuid]).ok();
    child.wait().unwrap();
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert_eq!(pod_cgroups(&uuid), Vec::<PathBuf>::new());
}

#[test]
fn gc_removes_the_cgroups_of_a_pod_whose_stage1_was_killed() {
    if !require_root("gc_removes_the_cgroups_of_a_pod_whose_stage1_was_killed") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/victim", "sleep 600"),
        "v.aci",
    );
    let (mut child, uuid) = spawn_run(&env, "victim", &[&img, "--memory=32M"]);
    wait_running(&env, &uuid);
    // SIGKILL the whole rkt process (stage1 replaced stage0 there): nothing can clean up.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let cgroups_left = TestEnv::wait_for(std::time::Duration::from_secs(10), || {
        env.rkt(&["status", &uuid]).stdout.contains("state=exited")
    });
    assert!(cgroups_left, "{:?}", env.rkt(&["status", &uuid]));
    assert!(
        !pod_cgroups(&uuid).is_empty(),
        "a killed stage1 leaves them"
    );
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert_eq!(pod_cgroups(&uuid), Vec::<PathBuf>::new());
}

#[test]
fn an_app_over_its_memory_limit_is_killed_and_told_so() {
    if !require_root("an_app_over_its_memory_limit_is_killed_and_told_so") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell(
            "example.com/hog",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived ${#x}",
        ),
        "hog.aci",
    );
    let out = env.run(&[&img, "--memory=32M"]);
    assert_eq!(out.code, 137, "{out:?}");
    assert!(!out.stdout.contains("survived"), "{out:?}");
    assert!(
        out.stderr
            .contains("app hog was killed by the kernel's OOM killer: it used more than its memory limit of 32000000 bytes"),
        "{out:?}"
    );
}

#[test]
fn only_the_specs_devices_can_be_made() {
    if !require_root("only_the_specs_devices_can_be_made") {
        return;
    }
    let env = TestEnv::new();
    let script = "mknod /tmp/null c 1 3 && echo null:ok; \
                  mknod /tmp/ptmx c 5 2 2>/dev/null || echo ptmx:refused; \
                  mknod /tmp/loop c 10 237 2>/dev/null || echo loop:refused; \
                  for d in firmware fs module; do ls -A /sys/$d; done | wc -l";
    let img = env.image(&ImageSpec::shell("example.com/mknod", script), "mknod.aci");
    let out = env.run(&[&img]);
    let stdout = out.ok();
    assert!(stdout.contains("null:ok"), "{out:?}");
    assert!(stdout.contains("ptmx:refused"), "{out:?}");
    assert!(stdout.contains("loop:refused"), "{out:?}");
    assert_eq!(stdout.lines().last(), Some("0"), "masked sysfs: {out:?}");
    // --insecure-options=paths opens the device policy, as in rkt.
    let open = env.rkt(&["--insecure-options=image,paths", "run", &img]);
    assert!(!open.ok().contains("loop:refused"), "{open:?}");
}

#[test]
fn seccomp_and_no_new_privileges_follow_rkt() {
    if !require_root("seccomp_and_no_new_privileges_follow_rkt") {
        return;
    }
    let env = TestEnv::new();
    let script = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; \
                  unshare -U true 2>/dev/null || echo userns:refused; \
                  mkdir /tmp/d 2>&1 | sed 's/.*: //'";
    let img = env.image(&ImageSpec::shell("example.com/filtered", script), "f.aci");
    // The default filter, as root: no no-new-privileges.
    let out = env.run(&[&img]);
    let s = out.ok();
    assert_eq!(field(s, "Seccomp:"), "2", "{out:?}");
    assert_eq!(field(s, "NoNewPrivs:"), "0", "{out:?}");
    assert!(s.contains("userns:refused"), "{out:?}");
    // A non-root app with a filter also gets no-new-privileges; errno as asked.
    let out = env.run(&[
        &img,
        "--user=1000",
        "--seccomp=mode=remove,errno=EXFULL,mkdir",
    ]);
    let s = out.ok();
    assert_eq!(field(s, "NoNewPrivs:"), "1", "{out:?}");
    assert!(s.contains("Exchange full"), "{out:?}");
    // @appc.io/all: no filter at all; --insecure-options=seccomp likewise.
    let out = env.run(&[&img, "--seccomp=mode=retain,@appc.io/all"]);
    assert_eq!(field(out.ok(), "Seccomp:"), "0", "{out:?}");
    let out = env.rkt(&["--insecure-options=image,seccomp", "run", &img]);
    assert_eq!(field(out.ok(), "Seccomp:"), "0", "{out:?}");
    // The image's isolator, overridden by the flag.
    let strict = ImageSpec::shell("example.com/strict", script).isolator(
        "os/linux/seccomp-remove-set",
        serde_json::json!({"set": ["mkdir"], "errno": "EROFS"}),
    );
    let strict = env.image(&strict, "strict.aci");
    assert!(env.run(&[&strict]).ok().contains("Read-only file system"));
    let out = env.run(&[&strict, "--seccomp=mode=retain,@appc.io/all"]);
    assert!(!out.ok().contains("Read-only file system"), "{out:?}");
    // The no-new-privileges isolator on a root app.
    let nnp = ImageSpec::shell("example.com/nnp", script)
        .isolator("os/linux/no-new-privileges", serde_json::json!(true));
    let out = env.run(&[&env.image(&nnp, "nnp.aci")]);
    assert_eq!(field(out.ok(), "NoNewPrivs:"), "1", "{out:?}");
}

#[test]
fn the_kernel_keyring_is_out_of_reach_by_default() {
    if !require_root("the_kernel_keyring_is_out_of_reach_by_default") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::new("example.com/keys", &["/bin/pod-attack", "keyctl"]).with_attack(),
        "keys.aci",
    );
    let out = env.run(&[&img]);
    assert!(out.stdout.contains("keyctl: refused: EPERM"), "{out:?}");
    let open = env.run(&[&img, "--seccomp=mode=retain,@appc.io/all"]);
    assert!(!open.stdout.contains("refused"), "{open:?}");
}

#[test]
fn capability_flags_and_oom_score_reach_the_app() {
    if !require_root("capability_flags_and_oom_score_reach_the_app") {
        return;
    }
    let env = TestEnv::new();
    let script = "grep -E '^Cap(Eff|Bnd):' /proc/self/status; cat /proc/self/oom_score_adj; \
                  grep CapBnd /proc/1/status";
    let img = env.image(&ImageSpec::shell("example.com/capflags", script), "c.aci");
    let out = env.run(&[
        &img,
        "--caps-remove=CAP_NET_RAW,CAP_MKNOD",
        "--oom-score-adj=250",
    ]);
    let s = out.ok();
    // rkt's 14 defaults (0xa80425fb) without NET_RAW (13) and MKNOD (27).
    assert_eq!(field(s, "CapEff:"), "00000000a00405fb", "{out:?}");
    assert!(s.lines().any(|l| l == "250"), "{out:?}");
    // PID 1 keeps what it needs, not everything (no CAP_SYS_MODULE, CAP_SYS_PTRACE).
    let pid1_line = s.lines().last().unwrap();
    let pid1_mask =
        u64::from_str_radix(pid1_line.trim_start_matches("CapBnd:").trim(), 16).unwrap();
    assert_eq!(pid1_mask & (1 << 16), 0, "{out:?}");
    assert_eq!(pid1_mask & (1 << 19), 0, "{out:?}");
    let out = env.run(&[&img, "--caps-retain=CAP_KILL"]);
    assert_eq!(field(out.ok(), "CapEff:"), "0000000000000020", "{out:?}");
    // rkt's deprecated spelling works, with its warning.
    let out = env.run(&[&img, "--cap-remove=CAP_NET_RAW"]);
    assert!(out.stderr.contains("deprecated"), "{out:?}");
    // rkt's 14 defaults without NET_RAW (13) only.
    assert_eq!(field(out.ok(), "CapEff:"), "00000000a80405fb", "{out:?}");
}

#[test]
fn bad_isolator_values_are_refused_before_the_pod_exists() {
    if !require_root("bad_isolator_values_are_refused_before_the_pod_exists") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::shell("example.com/bad", "true"), "bad.aci");
    for (flag, needle) in [
        ("--memory=12Q", "12Q"),
        ("--memory=1k", "too low"),
        ("--cpu=-1", "-1"),
        ("--cpu=5000", "out of range"),
        ("--caps-retain=CAP_NOPE", "CAP_NOPE"),
        ("--seccomp=mode=retain,frobnicate", "frobnicate"),
        ("--seccomp=mode=remove,errno=ENOPE,reboot", "ENOPE"),
        ("--oom-score-adj=5000", "5000"),
    ] {
        let out = env.run(&[&img, flag]);
        assert_eq!(out.code, 254, "{flag}: {out:?}");
        assert!(out.stderr.contains(needle), "{flag}: {out:?}");
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{flag}: one line: {out:?}"
        );
    }
    let out = env.run(&[&img, "--caps-retain=CAP_KILL", "--caps-remove=CAP_CHOWN"]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(
        env.rkt(&["list", "--no-legend"]).ok().trim().is_empty(),
        "no pod left"
    );
}

#[test]
fn private_users_run_the_pod_in_a_shifted_user_namespace() {
    if !require_root("private_users_run_the_pod_in_a_shifted_user_namespace") {
        return;
    }
    let env = TestEnv::new();
    let host = env.work().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    // Host volumes are not shifted: the pod's root is an ordinary user to them.
    std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let script = "cat /proc/self/uid_map; stat -c 'owner %u:%g' /bin/busybox; \
                  touch /hv/made && echo made";
    let img = ImageSpec::shell("example.com/userns", script).mount_point("hv", "/hv", false);
    let img = env.image(&img, "userns.aci");
    let volume = format!("hv,kind=host,source={}", host.display());
    let out = env.rkt(&[
        "--insecure-options=image",
        "run",
        "--private-users",
        "--volume",
        &volume,
        &img,
    ]);
    let s = out.ok();
    let map: Vec<u64> = s
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let shift = map[1];
    assert_eq!(map[0], 0, "{out:?}");
    assert_eq!(map[2], 65536, "{out:?}");
    assert!(
        shift >= 65536 && shift.is_multiple_of(65536),
        "rkt's n<<16 shift: {out:?}"
    );
    // The image's files are the pod root's own (an id-mapped mount, not a chown).
    assert!(s.contains("owner 0:0"), "{out:?}");
    assert!(s.contains("made"), "{out:?}");
    use std::os::unix::fs::MetadataExt;
    let made = std::fs::metadata(host.join("made")).unwrap();
    assert_eq!(
        u64::from(made.uid()),
        shift,
        "the pod's root is uid {shift} on the host"
    );
    assert_eq!(u64::from(made.gid()), shift);

    // prepare records the range; run-prepared uses it.
    let prepared = env.rkt(&[
        "--insecure-options=image",
        "prepare",
        "--private-users",
        &img,
        "--exec",
        "/bin/cat",
        "--",
        "/proc/self/uid_map",
    ]);
    let uuid = prepared.ok().trim().to_string();
    let out = env.rkt(&["run-prepared", &uuid]);
    let first = out
        .ok()
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert_ne!(first, "0", "{out:?}");
}
