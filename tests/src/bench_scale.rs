//! `make bench` (scale): N exited pods (N = 100, 1000), then the time of `rkt list` and of
//! `rkt gc --grace-period=0s`, and the host mounts an exited pod holds. Targets (issue 13):
//! gc of 1000 pods under 2 s, `list` under 100 ms, no host mount per exited pod.
//!
//! Deleting files is the filesystem's cost: on a disk mounted with `discard`, deleting pod
//! directories whose data reached the disk is slow whoever does it. So each data directory is
//! measured on the disk (after `sync`, against the floor of GNU `rm -rf` of as many pods made
//! alongside in a twin data directory, also synced) and on a tmpfs of its own; the CPU time (user + system, children
//! included) shows rkt's own share. The pods run with `--net=none`: taking a network down is
//! the CNI plugins' cost, measured by the `net` part.
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rkt_tests::env::rkt_bin;
use rkt_tests::ImageSpec;

const POD_COUNTS: [usize; 2] = [100, 1000];
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

/// Wall and CPU time (user + system, waited-for children included) of one command.
struct Took {
    wall: Duration,
    cpu: Duration,
}

// The child is reaped by wait4 below, which std cannot see.
#[allow(clippy::zombie_processes)]
fn timed(mut cmd: Command) -> Took {
    let start = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid out pointers.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(rc, pid, "wait4 failed");
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        panic!("{cmd:?} failed (status {status}): {err}");
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Took {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
    }
}

fn sync() {
    let status = Command::new("sync").status().expect("sync");
    assert!(status.success());
}

/// A tmpfs on `dir`, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let target = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"mode=0700".as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
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

/// Runs `count` pods of `image` to completion in each of `dirs`, one in each at a time (so
/// that the pods of every directory are alike: same age, same place on the disk).
fn create_exited_pods(dirs: &[&Path], image: &str, count: usize) {
    for _ in 0..count {
        let children: Vec<_> = dirs
            .iter()
            .map(|dir| {
                rkt(
                    dir,
                    &["--insecure-options=image", "run", "--net=none", image],
                )
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
    }
}

pub fn scale_bench(out: &mut String, work: &Path) {
    writeln!(
        out,
        "## Scale: `rkt list` and `rkt gc --grace-period=0s` over N exited pods\n"
    )
    .unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    writeln!(
        out,
        "Load average when starting: {}. Wall times are the machine's, shared with others; CPU is rkt's own (user + system).\n",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    )
    .unwrap();
    writeln!(
        out,
        "| data dir | pods | host mounts per exited pod | rkt list wall (ms, median of {LIST_RUNS}) | rkt gc wall (s) | rkt gc CPU (s) | floor: rm -rf of as many twin pods (s) | left after gc |\n|---|---|---|---|---|---|---|---|"
    )
    .unwrap();
    let image = ImageSpec::shell("example.com/scale", "true")
        .build(work, "scale.aci")
        .display()
        .to_string();
    for on_tmpfs in [false, true] {
        for count in POD_COUNTS {
            let dir = work.join(format!(
                "scale-{count}-{}",
                if on_tmpfs { "tmpfs" } else { "disk" }
            ));
            let _tmpfs = on_tmpfs.then(|| Tmpfs::mount(&dir));
            // The floor's pods: made alongside, deleted by rm -rf.
            let (data, twin) = (dir.join("data"), dir.join("twin"));
            for d in [&data, &twin] {
                std::fs::create_dir_all(d).unwrap();
                timed(rkt(d, &["--insecure-options=image", "fetch", &image]));
            }
            create_exited_pods(&[&data, &twin], &image, count);
            let dir = data;
            assert_eq!(pods_in(&dir, "run"), count);
            let mounts_per_pod = host_mounts_under(&dir) as f64 / count as f64;
            let mut lists: Vec<Duration> = (0..LIST_RUNS)
                .map(|_| timed(rkt(&dir, &["list", "--no-legend"])).wall)
                .collect();
            lists.sort();
            let list = lists[LIST_RUNS / 2];
            sync();
            let mut rm = Command::new("rm");
            rm.arg("-rf").arg(twin.join("pods/run"));
            let floor = timed(rm);
            sync();
            let gc = timed(rkt(&dir, &["gc", "--grace-period=0s"]));
            let left =
                pods_in(&dir, "run") + pods_in(&dir, "exited-garbage") + pods_in(&dir, "garbage");
            let row = format!(
                "| {} | {count} | {mounts_per_pod:.2} | {:.1} | {:.3} | {:.3} | {:.3} | {left} |",
                if on_tmpfs { "tmpfs" } else { "disk (ext4)" },
                list.as_secs_f64() * 1000.0,
                gc.wall.as_secs_f64(),
                gc.cpu.as_secs_f64(),
                floor.wall.as_secs_f64(),
            );
            eprintln!("{row}");
            writeln!(out, "{row}").unwrap();
            let _ = aci::rootfs::remove_tree(&twin);
            let _ = aci::rootfs::remove_tree(&dir);
            drop(_tmpfs);
        }
    }
    writeln!(out).unwrap();
}
