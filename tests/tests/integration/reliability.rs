//! Reliability at scale and under faults: concurrent gc, full disks, what killed commands leave
//! in the store, and which mounts pods hold on the host.
use std::path::{Path, PathBuf};

use rkt_tests::{require_root, ImageSpec, TestEnv};

/// Pods in a state directory of the data directory.
fn pods_in(env: &TestEnv, state: &str) -> usize {
    std::fs::read_dir(env.data_dir().join("pods").join(state))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn three_concurrent_gc_runs_all_succeed() {
    if !require_root("three_concurrent_gc_runs_all_succeed") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::shell("example.com/gc-many", "true"), "g.aci");
    env.fetch(&img);
    for _ in 0..30 {
        env.run(&[&img]).ok();
    }
    assert_eq!(pods_in(&env, "run"), 30);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            env.cmd(&["gc", "--grace-period=0s"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut collected = Vec::new();
    for child in runs {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "gc failed: {stderr}");
        assert!(!stderr.contains("error"), "{stderr}");
        collected.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("Garbage collecting pod"))
                .map(str::to_string),
        );
    }
    // Every pod was collected exactly once, by one of the three.
    collected.sort();
    let before = collected.len();
    collected.dedup();
    assert_eq!(before, 30, "{collected:?}");
    assert_eq!(collected.len(), 30);
    for state in ["run", "exited-garbage", "garbage"] {
        assert_eq!(pods_in(&env, state), 0, "pods left in {state}");
    }
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
}
