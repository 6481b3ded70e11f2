//! `make bench` (scale): N exited pods (N = 100, 1000), then the time of `rkt list` and of
//! `rkt gc --grace-period=0s`, and the host mounts an exited pod holds. Targets (issue 13):
//! gc of 1000 pods under 2 s, `list` under 100 ms, no host mount per exited pod.
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rkt_tests::env::rkt_bin;
use rkt_tests::ImageSpec;

const POD_COUNTS: [usize; 2] = [100, 1000];
/// `rkt run`s at once while creating pods (the machine has 2 cores).
const PARALLEL_RUNS: usize = 2;
const LIST_RUNS: usize = 5;

fn rkt(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(rkt_bin());
    c.arg(format!("--dir={}", dir.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn timed(mut cmd: Command) -> (Duration, std::process::Output) {
    let start = Instant::now();
    let out = cmd.output().expect("spawn rkt");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, out)
}

/// Mount points under `dir` in the host's mount namespace (ours).
fn host_mounts_under(dir: &Path) -> usize {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .count()
}

fn pods_in(dir: &Path, state: &str) -> usize {
    std::fs::read_dir(dir.join("pods").join(state))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Runs `count` pods of `image` to completion, `PARALLEL_RUNS` at a time.
fn create_exited_pods(dir: &Path, image: &str, count: usize) {
    let mut left = count;
    while left > 0 {
        let batch = left.min(PARALLEL_RUNS);
        let children: Vec<_> = (0..batch)
            .map(|_| {
                rkt(dir, &["--insecure-options=image", "run", image])
                    .spawn()
                    .expect("spawn rkt run")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait rkt run");
            assert!(
                out.status.success(),
                "rkt run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        left -= batch;
    }
}

pub fn scale_bench(out: &mut String, work: &Path) {
    writeln!(
        out,
        "## Scale: `rkt list` and `rkt gc --grace-period=0s` over N exited pods\n"
    )
    .unwrap();
    writeln!(
        out,
        "| pods | create (s) | host mounts per exited pod | rkt list (ms, median of {LIST_RUNS}) | rkt gc (s) | left after gc |\n|---|---|---|---|---|---|"
    )
    .unwrap();
    let image = ImageSpec::shell("example.com/scale", "true")
        .build(work, "scale.aci")
        .display()
        .to_string();
    for count in POD_COUNTS {
        let dir = work.join(format!("scale-{count}"));
        std::fs::create_dir_all(&dir).unwrap();
        timed(rkt(&dir, &["--insecure-options=image", "fetch", &image]));
        let start = Instant::now();
        create_exited_pods(&dir, &image, count);
        let create = start.elapsed();
        assert_eq!(pods_in(&dir, "run"), count);
        let mounts_per_pod = host_mounts_under(&dir) as f64 / count as f64;
        let mut lists: Vec<Duration> = (0..LIST_RUNS)
            .map(|_| timed(rkt(&dir, &["list", "--no-legend"])).0)
            .collect();
        lists.sort();
        let list = lists[LIST_RUNS / 2];
        let (gc, _) = timed(rkt(&dir, &["gc", "--grace-period=0s"]));
        let left =
            pods_in(&dir, "run") + pods_in(&dir, "exited-garbage") + pods_in(&dir, "garbage");
        let row = format!(
            "| {count} | {:.1} | {mounts_per_pod:.2} | {:.1} | {:.3} | {left} |",
            create.as_secs_f64(),
            list.as_secs_f64() * 1000.0,
            gc.as_secs_f64()
        );
        eprintln!("{row}");
        writeln!(out, "{row}").unwrap();
        let _ = aci::rootfs::remove_tree(&dir);
    }
    writeln!(out).unwrap();
}
