//! Resident memory per running pod: the PSS (`/proc/PID/smaps_rollup`) of every process of
//! ours that stays while a pod runs `sleep` (the `rkt run` process, by then the waiter, and the
//! pod's PID 1, stage2-init), against `crun run` of the same root filesystem (crun's process;
//! its container's PID 1 is the app itself). 1 and 20 pods at once, the app not counted on
//! either side (docs/stage-contract.md, "The waiter").
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aci::archive::Compression;
use rkt_tests::env::rkt_bin;
use rkt_tests::{ImageSpec, TestEnv};

/// The target: at most this much PSS per pod for everything of ours.
const TARGET_KIB: u64 = 2048;

/// PSS of a process in KiB (0 if it is gone).
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Children of `pid` (from `/proc/PID/task/PID/children`).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Our resident PSS for `n` pods: (waiters, PID 1s), summed, in KiB.
fn rkt_pods(dir: &Path, image: &str, n: usize) -> (u64, u64) {
    let mut pods: Vec<Child> = (0..n)
        .map(|_| {
            Command::new(rkt_bin())
                .arg(format!("--dir={}", dir.display()))
                .args([
                    "run",
                    "--net=none",
                    image,
                    "--exec",
                    "/bin/sleep",
                    "--",
                    "1000",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start rkt run")
        })
        .collect();
    let ready = TestEnv::wait_for(Duration::from_secs(60), || {
        pods.iter().all(|p| {
            comm(p.id()) == "stage1-waiter"
                && children(p.id())
                    .first()
                    .is_some_and(|init| !children(*init).is_empty())
        })
    });
    assert!(
        ready,
        "the pods did not all start and hand over to the waiter"
    );
    // Let fault-in settle, then read everything at one moment.
    std::thread::sleep(Duration::from_millis(500));
    let (mut waiters, mut inits) = (0, 0);
    for p in &pods {
        waiters += pss_kib(p.id());
        inits += children(p.id()).iter().map(|c| pss_kib(*c)).sum::<u64>();
    }
    for p in &mut pods {
        // SAFETY: signalling our own child; the waiter forwards it and the pod stops.
        unsafe { libc::kill(p.id() as i32, libc::SIGTERM) };
    }
    for p in &mut pods {
        p.wait().unwrap();
    }
    (waiters, inits)
}

/// crun's resident PSS for `n` containers, in KiB, measured by a helper in a mount namespace
/// without the cgroup2 mount (see `CrunRunner`).
fn crun_containers(bundle: &Path, n: usize) -> u64 {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .arg("crun-mem")
        .arg(bundle)
        .arg(n.to_string())
        .output()
        .expect("run the crun helper");
    assert!(
        out.status.success(),
        "crun helper: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the crun helper's figure")
}

/// The helper side: `n` concurrent `crun run`s of `sleep`; prints their summed PSS in KiB.
pub fn crun_mem(bundle: &str, n: usize) {
    // SAFETY: a valid C string; only this private mount namespace is affected.
    unsafe { libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH) };
    let names: Vec<String> = (0..n)
        .map(|i| format!("rkt-bench-mem-{}-{i}", std::process::id()))
        .collect();
    let mut runs: Vec<Child> = names
        .iter()
        .map(|name| {
            Command::new("crun")
                .args(["run", "--bundle", bundle, name])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start crun run")
        })
        .collect();
    let ready = TestEnv::wait_for(Duration::from_secs(60), || {
        runs.iter().all(|r| !children(r.id()).is_empty())
    });
    assert!(ready, "crun's containers did not all start");
    std::thread::sleep(Duration::from_millis(500));
    let total: u64 = runs.iter().map(|r| pss_kib(r.id())).sum();
    for name in &names {
        let _ = Command::new("crun")
            .args(["kill", name, "KILL"])
            .stderr(Stdio::null())
            .status();
    }
    for r in &mut runs {
        r.wait().unwrap();
    }
    println!("{total}");
}

pub fn mem_bench(out: &mut String, work: &Path) {
    writeln!(
        out,
        "\n## Memory: PSS per running pod (`sleep`), ours against `crun run`\n\n\
         | pods | waiter (`rkt run`) | stage2-init | ours per pod | crun per pod | ratio | target |\n\
         |---|---|---|---|---|---|---|"
    )
    .unwrap();
    let dir = work.join("mem-store");
    let _ = std::fs::remove_dir_all(&dir);
    let spec = ImageSpec::new("example.com/bench-sleep", &["/bin/sleep", "1000"]);
    let aci = spec.compression(Compression::None).build(work, "sleep.aci");
    let (id, tree) = crate::fetch_rendered(&dir, &aci);
    let bundle = crate::crun_bundle(work, &tree, false, &["/bin/sleep", "1000"]);
    for n in [1usize, 20] {
        let (waiters, inits) = rkt_pods(&dir, &id, n);
        let crun = crun_containers(&bundle, n);
        let n64 = n as u64;
        let ours = (waiters + inits) / n64;
        writeln!(
            out,
            "| {n} | {:.2} MiB | {:.2} MiB | **{:.2} MiB** | {:.2} MiB | {:.2}x | ≤ {:.1} MiB: {} |",
            waiters as f64 / n as f64 / 1024.0,
            inits as f64 / n as f64 / 1024.0,
            ours as f64 / 1024.0,
            crun as f64 / n as f64 / 1024.0,
            ours as f64 / (crun as f64 / n as f64),
            TARGET_KIB as f64 / 1024.0,
            if ours <= TARGET_KIB { "met" } else { "missed" },
        )
        .unwrap();
    }
    let _ = Command::new(rkt_bin())
        .arg(format!("--dir={}", dir.display()))
        .args(["gc", "--grace-period=0s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(&dir);
}
