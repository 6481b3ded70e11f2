//! Networking cost: `rkt run --net=default` against `--net=none` for `/bin/true`, and the
//! CNI plugins' own ADD and DEL times for the same configuration, called directly in a
//! namespace of the benchmark's own (docs/stage-contract.md, "Networking").
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rkt_tests::env::rkt_bin;
use rkt_tests::ImageSpec;

const ITERATIONS: usize = 20;

/// The built-in default network, as stage1 holds it.
const DEFAULT_CONF: &str = r#"{"cniVersion":"0.1.0","name":"default","type":"ptp","ipMasq":true,"ipam":{"type":"host-local","subnet":"172.16.28.0/24","routes":[{"dst":"0.0.0.0/0"}]}}"#;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Runs rkt; its wall time and stderr.
fn rkt(dir: &Path, args: &[&str]) -> (Duration, String) {
    let start = Instant::now();
    let out = Command::new(rkt_bin())
        .arg(format!("--dir={}", dir.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn rkt");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "rkt {args:?}: {stderr}");
    (took, stderr)
}

/// stage1's own account (with --debug): total network setup time and the part spent in
/// plugins, in ms.
fn setup_split(stderr: &str) -> (f64, f64) {
    let line = stderr
        .lines()
        .find_map(|l| l.split_once("networks set up in "))
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| panic!("no setup timing from stage1 --debug: {stderr}"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One direct plugin call, timed.
fn plugin(command: &str, id: &str, netns: &str) -> Duration {
    let start = Instant::now();
    let mut child = Command::new("/usr/lib/cni/ptp")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .env("CNI_VERSION", "0.1.0")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run /usr/lib/cni/ptp (install containernetworking-plugins)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(DEFAULT_CONF.as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    let took = start.elapsed();
    assert!(status.success(), "ptp {command} failed");
    took
}

pub fn net_bench(out: &mut String, work: &Path) {
    let dir = work.join("net-store");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let image = ImageSpec::new("example.com/bench-net", &["/bin/true"])
        .build(work, "bench-net.aci")
        .display()
        .to_string();
    let fetched = Command::new(rkt_bin())
        .arg(format!("--dir={}", dir.display()))
        .args(["--insecure-options=image", "fetch", &image])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&fetched.stdout).trim().to_string();
    let (mut none, mut default, mut gc_none, mut gc_default) = (vec![], vec![], vec![], vec![]);
    let (mut setup, mut ours) = (vec![], vec![]);
    for _ in 0..ITERATIONS {
        none.push(rkt(&dir, &["run", "--net=none", &id, "--exec", "/bin/true"]).0);
        gc_none.push(rkt(&dir, &["gc", "--grace-period=0s"]).0);
        let (took, stderr) = rkt(
            &dir,
            &[
                "--debug",
                "run",
                "--net=default",
                &id,
                "--exec",
                "/bin/true",
            ],
        );
        default.push(took);
        let (total, plugins) = setup_split(&stderr);
        setup.push(total);
        ours.push(total - plugins);
        gc_default.push(rkt(&dir, &["gc", "--grace-period=0s"]).0);
    }
    // The plugin alone, each time in a new namespace made the way `ip netns` makes one, as
    // a pod's is (untimed).
    let (mut add, mut del) = (vec![], vec![]);
    for i in 0..ITERATIONS {
        let netns = format!("rkt-bench-{}-{i}", std::process::id());
        assert!(Command::new("ip")
            .args(["netns", "add", &netns])
            .status()
            .unwrap()
            .success());
        let path = format!("/var/run/netns/{netns}");
        add.push(plugin("ADD", &netns, &path));
        del.push(plugin("DEL", &netns, &path));
        let _ = Command::new("ip").args(["netns", "del", &netns]).status();
    }
    let (none, default) = (median(none), median(default));
    let (add, del) = (median(add), median(del));
    let extra = default.saturating_sub(none);
    let beyond_add = extra.as_secs_f64() * 1000.0 - add.as_secs_f64() * 1000.0;
    let (setup, ours) = (median_f(setup), median_f(ours));
    writeln!(
        out,
        "\n## Networking: `rkt run --net=default` against `--net=none` for `/bin/true` ({ITERATIONS} runs each, alternating; medians; teardown happens after rkt exits)\n"
    )
    .unwrap();
    writeln!(
        out,
        "| measure | ms |\n|---|---|\n\
         | rkt run --net=none | {} |\n\
         | rkt run --net=default | {} |\n\
         | extra wall time of --net=default | {} |\n\
         | ptp + host-local + ipMasq ADD, called directly | {} |\n\
         | ptp DEL, called directly | {} |\n\
         | extra wall time beyond the direct ADD (noisy: two medians of a shared machine) | {beyond_add:.1} |\n\
         | stage1's network setup, as it times itself (--debug) | {setup:.1} |\n\
         | **our overhead beyond the plugins' own time in that setup** (target ≤ 5) | **{ours:.2}** |\n\
         | rkt gc of a --net=none pod | {} |\n\
         | rkt gc right after a --net=default pod (waits for the DEL the pod's end started) | {} |",
        ms(none),
        ms(default),
        ms(extra),
        ms(add),
        ms(del),
        ms(median(gc_none)),
        ms(median(gc_default)),
    )
    .unwrap();
}
