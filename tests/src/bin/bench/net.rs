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

fn rkt(dir: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(rkt_bin())
        .arg(format!("--dir={}", dir.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn rkt");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "rkt {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
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
    for _ in 0..ITERATIONS {
        for (net, times, gc) in [
            ("--net=none", &mut none, &mut gc_none),
            ("--net=default", &mut default, &mut gc_default),
        ] {
            times.push(rkt(&dir, &["run", net, &id, "--exec", "/bin/true"]));
            gc.push(rkt(&dir, &["gc", "--grace-period=0s"]));
        }
    }
    // The plugin alone, in a namespace made the way `ip netns` makes one.
    let netns = format!("rkt-bench-{}", std::process::id());
    assert!(Command::new("ip")
        .args(["netns", "add", &netns])
        .status()
        .unwrap()
        .success());
    let path = format!("/var/run/netns/{netns}");
    let (mut add, mut del) = (vec![], vec![]);
    for i in 0..ITERATIONS {
        let id = format!("rkt-bench-{}-{i}", std::process::id());
        add.push(plugin("ADD", &id, &path));
        del.push(plugin("DEL", &id, &path));
    }
    let _ = Command::new("ip").args(["netns", "del", &netns]).status();
    let (none, default) = (median(none), median(default));
    let (add, del) = (median(add), median(del));
    let extra = default.saturating_sub(none);
    let ours = extra.as_secs_f64() * 1000.0 - add.as_secs_f64() * 1000.0;
    writeln!(
        out,
        "\n## Networking: `rkt run --net=default` against `--net=none` for `/bin/true` ({ITERATIONS} runs each, alternating; medians)\n"
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
         | **our overhead beyond the plugin's ADD** (target ≤ 5) | **{ours:.1}** |\n\
         | rkt gc of a --net=none pod | {} |\n\
         | rkt gc of a --net=default pod (CNI DEL included) | {} |",
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
