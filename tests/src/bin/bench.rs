//! `make bench`: measures, in one run and against named peers,
//!
//! 1. `rkt fetch` of ACIs of about 10 MB, 100 MB and 500 MB (gzip and zstd; many small files and
//!    a few large ones) against the floor `zstd -dc F | sha512sum` (or `gzip -dc`) plus
//!    `tar -x` of the same archive, with peak memory;
//! 2. `rkt run` of a stored busybox image running `/bin/true` against `crun run` of an OCI
//!    bundle of the same root filesystem, alternating, split by stage, with peak memory, for a
//!    5 MB and a 500 MB image; and the stripped size of stage2-init;
//! 3. `rkt fetch docker://` of a ~100 MB five-layer image from Debian's docker-registry against
//!    `skopeo copy` of it to an OCI layout, and a second, cached fetch.
//!
//! 4. resident memory (PSS) per running pod against crun, for 1 and 20 pods (`mem.rs`);
//! 5. the networking cost of `rkt run --net=default` over `--net=none`, and the CNI plugins'
//!    own time (`net.rs`);
//! 6. `rkt list` and `rkt gc` over 100 and 1000 exited pods, and the host mounts each holds
//!    (`bench_scale.rs`).
//!
//! Results go to stdout and `target/bench-results.md`. Needs root, `crun`, `zstd`, `gzip`, `tar`,
//! `ip`, the CNI plugins, `docker-registry`, `skopeo` and `openssl`.
//! `rkt-bench fetch|docker|run|mem|net|scale` runs one part.
#[path = "bench/mem.rs"]
mod mem;
#[path = "bench/net.rs"]
mod net;

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aci::archive::{AciBuilder, Compression};
use rkt_tests::env::{release_dir, rkt_bin};
use rkt_tests::ImageSpec;

#[path = "../bench_scale.rs"]
mod scale;

const RUNS: usize = 3;
const RUN_ITERATIONS: usize = 20;

/// Wall time and peak RSS (KiB) of one command.
struct Measure {
    wall: Duration,
    max_rss_kib: i64,
}

/// Runs a command, waiting with wait4 to learn its peak memory.
// The child is reaped by wait4 below, which std cannot see.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command) -> Measure {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
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
    Measure {
        wall,
        max_rss_kib: usage.ru_maxrss,
    }
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Deterministic, moderately compressible bytes (4 bits of entropy per byte).
struct Noise(u64);

impl Noise {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = b'a' + (self.0 % 16) as u8;
        }
    }
}

/// Builds a bench image in a child process. Peak memory is read with wait4, and a child
/// spawned with vfork inherits its parent's high-water mark at exec: the bench itself must
/// stay small, so the large buffers of image building live in a short-lived helper.
fn build_image(path: &Path, total: usize, compression: Compression) {
    let status = Command::new(std::env::current_exe().unwrap())
        .arg("make-image")
        .arg(path)
        .arg(total.to_string())
        .arg(compression.name())
        .status()
        .expect("run the image builder");
    assert!(status.success(), "building {} failed", path.display());
}

/// An image of about `total` bytes: 80% in many files of 4-64 KiB, 20% in four large files.
fn make_image(path: &Path, total: usize, compression: Compression) {
    let spec = ImageSpec::new("example.com/bench", &["/bin/true"]);
    let file = File::create(path).expect("create bench image");
    let mut b = AciBuilder::new(file, compression, &spec.manifest).expect("builder");
    spec.add_contents(&mut b);
    let mut noise = Noise(0x2545_f491_4f6c_dd1d);
    let small_total = total * 8 / 10;
    let mut written = 0;
    let mut i = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while written < small_total {
        let size = 4096 + (i * 7919) % (60 * 1024);
        noise.fill(&mut buf[..size]);
        b.add_file(
            &format!("data/d{:03}/f{i:06}", i / 500),
            0o644,
            &buf[..size],
        )
        .expect("add");
        written += size;
        i += 1;
    }
    let large = (total - small_total) / 4;
    let mut big = vec![0u8; large];
    for n in 0..4 {
        noise.fill(&mut big);
        b.add_file(&format!("data/large{n}"), 0o644, &big)
            .expect("add");
    }
    b.finish().expect("finish");
}

/// Most `rkt fetch` may take of the floor for a zstd image of 200-500 MB (issue 14).
const FETCH_TARGET: f64 = 0.6;

fn fetch_bench(out: &mut String, work: &Path) {
    writeln!(
        out,
        "## Import: `rkt fetch` against `DECOMPRESS -dc F | sha512sum` + `tar -x`\n"
    )
    .unwrap();
    writeln!(
        out,
        "Target (issue 14): for a zstd image of 200-500 MB, rkt fetch at most {FETCH_TARGET:.1}x the floor, \
         peak RSS under 64 MiB.\n\n\
         | image | compressed | files | floor (s) | rkt fetch (s) | ratio | rkt peak RSS |\n|---|---|---|---|---|---|---|"
    )
    .unwrap();
    for (mb, files_hint) in [(10usize, "~300"), (100, "~3k"), (500, "~15k")] {
        for (compression, tool, tar_flag) in [
            (Compression::Gzip, "gzip", "-z"),
            (Compression::Zstd, "zstd", "--zstd"),
        ] {
            let aci = work.join(format!("bench-{mb}mb.{tool}.aci"));
            build_image(&aci, mb * 1024 * 1024, compression);
            let size = std::fs::metadata(&aci).unwrap().len();
            let a = aci.display();
            let (mut floors, mut fetches, mut rss) = (Vec::new(), Vec::new(), 0);
            // SAFETY: sync has no preconditions.
            unsafe { libc::sync() };
            // Warm the page cache once so every contender reads from memory.
            measure(&mut sh(&format!("cat {a} > /dev/null")));
            for _ in 0..RUNS {
                let x = work.join("tar-x");
                let _ = std::fs::remove_dir_all(&x);
                std::fs::create_dir_all(&x).unwrap();
                let hash = measure(&mut sh(&format!("{tool} -dc {a} | sha512sum")));
                let untar = measure(&mut sh(&format!(
                    "tar -x {tar_flag} -f {a} -C {}",
                    x.display()
                )));
                floors.push(hash.wall + untar.wall);
                let dir = work.join("store");
                let _ = std::fs::remove_dir_all(&dir);
                let m = measure(
                    Command::new(rkt_bin())
                        .arg(format!("--dir={}", dir.display()))
                        .args(["--insecure-options=image", "fetch"])
                        .arg(&aci),
                );
                fetches.push(m.wall);
                rss = rss.max(m.max_rss_kib);
            }
            let (floor, fetch) = (median(floors), median(fetches));
            let ratio = fetch.as_secs_f64() / floor.as_secs_f64();
            let target = if compression == Compression::Zstd && (200..=500).contains(&mb) {
                let verdict = if ratio <= FETCH_TARGET {
                    "met"
                } else {
                    "missed"
                };
                format!(" (target ≤ {FETCH_TARGET:.1}x: {verdict})")
            } else {
                String::new()
            };
            writeln!(
                out,
                "| {mb} MB {tool} | {:.1} MB | {files_hint} | {} | {} | {ratio:.2}x{target} | {:.1} MiB |",
                size as f64 / 1e6,
                secs(floor),
                secs(fetch),
                rss as f64 / 1024.0
            )
            .unwrap();
            let _ = std::fs::remove_file(&aci);
        }
    }
    let _ = std::fs::remove_dir_all(work.join("store"));
    let _ = std::fs::remove_dir_all(work.join("tar-x"));
}

/// Incompressible bytes (xorshift), so a layer's size is what travels.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// 3. `rkt fetch docker://` of a five-layer image of about 100 MB from Debian's
///    docker-registry on loopback, against `skopeo copy docker://... oci:DIR` of the same
///    image, and a second (cached) fetch.
fn docker_bench(out: &mut String, work: &Path) {
    use rkt_tests::https::Pki;
    use rkt_tests::oci::Registry;
    let pki = Pki::new(&work.join("pki"));
    let registry = Registry::start(&work.join("registry"), &pki);
    // Built by a child process: a forked child starts with its parent's peak RSS, so the
    // layers must never be in this process's memory.
    let layout = work.join("bench-layout");
    let built = Command::new(std::env::current_exe().unwrap())
        .arg("docker-layout")
        .arg(&layout)
        .output()
        .expect("build the layout");
    assert!(built.status.success(), "{built:?}");
    let total: usize = String::from_utf8_lossy(&built.stdout)
        .trim()
        .parse()
        .unwrap();
    registry.push(&layout, "1.0", "bench/big");
    let src = format!("docker://127.0.0.1:{}/bench/big:1.0", registry.port);
    let (mut skopeos, mut fetches, mut cached, mut rss) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for run in 0..RUNS {
        let dest = work.join(format!("skopeo-oci-{run}"));
        let m = measure(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--src-tls-verify=false"])
                .arg(&src)
                .arg(format!("oci:{}:1.0", dest.display())),
        );
        skopeos.push(m.wall);
        let _ = std::fs::remove_dir_all(&dest);
        let dir = work.join("docker-store");
        let _ = std::fs::remove_dir_all(&dir);
        let fetch = || {
            measure(
                Command::new(rkt_bin())
                    .env("SSL_CERT_FILE", &pki.ca_pem)
                    .arg(format!("--dir={}", dir.display()))
                    .args(["--insecure-options=image", "fetch", &src]),
            )
        };
        let m = fetch();
        fetches.push(m.wall);
        rss = rss.max(m.max_rss_kib);
        cached.push(fetch().wall);
    }
    let (skopeo, fetch, again) = (median(skopeos), median(fetches), median(cached));
    writeln!(
        out,
        "\n## Docker: `rkt fetch docker://` against `skopeo copy docker://... oci:DIR`\n\n| image | skopeo copy (s) | rkt fetch (s) | ratio | rkt peak RSS | cached rkt fetch (ms) |\n|---|---|---|---|---|---|\n| 5 layers, {:.1} MB compressed | {} | {} | {:.2}x | {:.1} MiB | {} |",
        total as f64 / 1e6,
        secs(skopeo),
        secs(fetch),
        fetch.as_secs_f64() / skopeo.as_secs_f64(),
        rss as f64 / 1024.0,
        ms(again),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(work.join("docker-store"));
}

/// Writes the benchmark's Docker image (busybox and four layers of 20 MB of noise) as an OCI
/// layout and prints its compressed size.
fn docker_layout(dir: &Path) {
    use rkt_tests::oci::{write_layout, LayerBuilder};
    let mut layers = vec![LayerBuilder::new().busybox().build()];
    for i in 0..4u64 {
        let mut b = LayerBuilder::new().dir(&format!("data{i}/"));
        for f in 0..5u64 {
            b = b.file(
                &format!("data{i}/blob{f}"),
                0o644,
                &noise(5 * 1024 * 1024, i * 100 + f + 1),
            );
        }
        layers.push(b.build());
    }
    write_layout(
        dir,
        "1.0",
        serde_json::json!({"Cmd": ["/bin/true"]}),
        &layers,
    );
    println!("{}", layers.iter().map(|l| l.blob.len()).sum::<usize>());
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// Times of one `rkt run`, split at the files each stage leaves behind.
struct RunSplit {
    total: Duration,
    stage0: Duration,
    stage1: Duration,
    app: Duration,
    teardown: Duration,
    rss: i64,
}

fn rkt_run_once(dir: &Path, image_id: &str, uuid_file: &Path, app_flags: &[&str]) -> RunSplit {
    let start = SystemTime::now();
    let m = measure(
        Command::new(rkt_bin())
            .arg(format!("--dir={}", dir.display()))
            .args([
                "run",
                // crun's pod has a network namespace with only lo too.
                "--net=none",
                &format!("--uuid-file-save={}", uuid_file.display()),
                image_id,
            ])
            .args(app_flags)
            .args(["--exec", "/bin/true"]),
    );
    let end = start + m.wall;
    let uuid = std::fs::read_to_string(uuid_file).unwrap();
    let pod = dir.join("pods/run").join(&uuid);
    let since = |a: SystemTime, b: Option<SystemTime>| {
        b.and_then(|b| b.duration_since(a).ok()).unwrap_or_default()
    };
    let created = mtime(&pod.join("pod-created"));
    let pid = mtime(&pod.join("pid"));
    // The pod's overlays live in its own mount namespace: on the host, stage1's files are in
    // the overlay's upper directory (docs/stage-contract.md, "Mount namespace").
    let tree = std::fs::read_to_string(pod.join("stage1TreeStoreID")).unwrap_or_default();
    let status = mtime(&pod.join("stage1/rootfs/rkt/status/bench")).or_else(|| {
        mtime(
            &pod.join("overlay")
                .join(tree.trim())
                .join("upper/rkt/status/bench"),
        )
    });
    let split = RunSplit {
        total: m.wall,
        stage0: since(start, created),
        stage1: created.map(|c| since(c, pid)).unwrap_or_default(),
        app: pid.map(|p| since(p, status)).unwrap_or_default(),
        teardown: status
            .map(|s| end.duration_since(s).unwrap_or_default())
            .unwrap_or_default(),
        rss: m.max_rss_kib,
    };
    let gc = Command::new(rkt_bin())
        .arg(format!("--dir={}", dir.display()))
        .args(["gc", "--grace-period=0s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(gc.success());
    split
}

/// Fetches `aci` into a new store at `dir`, rendered: its image ID, and the root of its tree,
/// which doubles as crun's root filesystem (the same files for both).
fn fetch_rendered(dir: &Path, aci: &Path) -> (String, PathBuf) {
    let fetched = Command::new(rkt_bin())
        .arg(format!("--dir={}", dir.display()))
        .args(["--insecure-options=image", "fetch", "--full"])
        .arg(aci)
        .output()
        .unwrap();
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    let id = String::from_utf8_lossy(&fetched.stdout).trim().to_string();
    let tree = std::fs::read_dir(dir.join("cas/tree"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("rootfs");
    (id, tree)
}

/// An OCI bundle for crun with a copy of the same root filesystem, running `args`.
fn crun_bundle(work: &Path, rootfs: &Path, limited: bool, args: &[&str]) -> PathBuf {
    let bundle = work.join("oci-bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(&bundle).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(rootfs)
        .arg(bundle.join("rootfs"))
        .status()
        .unwrap();
    assert!(copied.success());
    assert!(Command::new("crun")
        .arg("spec")
        .current_dir(&bundle)
        .status()
        .unwrap()
        .success());
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["args"] = serde_json::json!(args);
    config["process"]["terminal"] = serde_json::json!(false);
    config["root"]["readonly"] = serde_json::json!(true);
    if limited {
        // The same limits as rkt's --memory=128M --cpu=500m.
        config["linux"]["resources"]["memory"] = serde_json::json!({ "limit": 128_000_000 });
        config["linux"]["resources"]["cpu"] =
            serde_json::json!({ "quota": 50_000, "period": 100_000 });
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    bundle
}

fn run_bench(out: &mut String, work: &Path) {
    writeln!(out, "\n## Start-up: `rkt run IMAGE --exec /bin/true` against `crun run` (alternating, {RUN_ITERATIONS} runs each)\n").unwrap();
    writeln!(
        out,
        "| image | crun median (ms) | rkt median (ms) | ratio | rkt stage0 | stage1 | app | teardown | rkt peak RSS | crun peak RSS |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    .unwrap();
    for (label, extra_mb, limited) in [
        ("busybox (~5 MB)", 0usize, false),
        ("busybox, memory and cpu limits on both", 0, true),
        ("busybox + 500 MB", 500, false),
    ] {
        let app_flags: &[&str] = if limited {
            &["--memory=128M", "--cpu=500m"]
        } else {
            &[]
        };
        let dir = work.join("run-store");
        let _ = std::fs::remove_dir_all(&dir);
        let spec = ImageSpec::new("example.com/bench", &["/bin/true"]);
        let aci = work.join("run.aci");
        if extra_mb == 0 {
            spec.compression(Compression::None).build(work, "run.aci");
        } else {
            build_image(&aci, extra_mb * 1024 * 1024, Compression::None);
        }
        let (id, tree) = fetch_rendered(&dir, &aci);
        let bundle = crun_bundle(work, &tree, limited, &["/bin/true"]);
        let uuid_file = work.join("uuid");
        // Flush what building the images left dirty, so writeback does not land in the timings.
        // SAFETY: sync has no preconditions.
        unsafe { libc::sync() };
        // One warm-up each (stage1 import, page cache).
        rkt_run_once(&dir, &id, &uuid_file, app_flags);
        let mut runner = CrunRunner::start(&bundle);
        let mut crun = |n: usize| runner.run(n);
        crun(0);
        let (mut rkt_times, mut crun_times) = (Vec::new(), Vec::new());
        let (mut s0, mut s1, mut app, mut td) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut rkt_rss, mut crun_rss) = (0, 0);
        for n in 1..=RUN_ITERATIONS {
            let r = rkt_run_once(&dir, &id, &uuid_file, app_flags);
            if std::env::var_os("RKT_BENCH_VERBOSE").is_some() {
                eprintln!(
                    "rkt run {n}: {} ms (stage0 {} stage1 {} app {} teardown {})",
                    ms(r.total),
                    ms(r.stage0),
                    ms(r.stage1),
                    ms(r.app),
                    ms(r.teardown)
                );
            }
            rkt_times.push(r.total);
            s0.push(r.stage0);
            s1.push(r.stage1);
            app.push(r.app);
            td.push(r.teardown);
            rkt_rss = rkt_rss.max(r.rss);
            let c = crun(n);
            crun_times.push(c.wall);
            crun_rss = crun_rss.max(c.max_rss_kib);
        }
        let (r, c) = (median(rkt_times), median(crun_times));
        writeln!(
            out,
            "| {label} | {} | {} | {:.2}x | {} | {} | {} | {} | {:.1} MiB | {:.1} MiB |",
            ms(c),
            ms(r),
            r.as_secs_f64() / c.as_secs_f64(),
            ms(median(s0)),
            ms(median(s1)),
            ms(median(app)),
            ms(median(td)),
            rkt_rss as f64 / 1024.0,
            crun_rss as f64 / 1024.0
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&aci);
    }
    let init = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/x86_64-unknown-linux-gnu/init/stage2-init");
    if let Ok(meta) = std::fs::metadata(&init) {
        writeln!(
            out,
            "\nstage2-init (static, stripped): {} bytes ({:.2} MiB)",
            meta.len(),
            meta.len() as f64 / 1048576.0
        )
        .unwrap();
    }
    let stage1 = release_dir().join("stage1.aci");
    if let Ok(meta) = std::fs::metadata(&stage1) {
        writeln!(out, "stage1.aci (gzip): {} bytes", meta.len()).unwrap();
    }
}

/// crun 1.8 refuses hybrid cgroup hosts ("cgroups in hybrid mode not supported"), so it runs
/// from a helper in a private mount namespace without the cgroup2 mount: crun then sees plain
/// cgroup v1. The helper times each `crun run` itself, so the namespace costs crun nothing.
struct CrunRunner {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl CrunRunner {
    fn start(bundle: &Path) -> CrunRunner {
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private"])
            .arg(std::env::current_exe().unwrap())
            .arg("crun-runner")
            .arg(bundle)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the crun runner");
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        CrunRunner { child, out }
    }

    fn run(&mut self, n: usize) -> Measure {
        use std::io::{BufRead, Write};
        writeln!(self.child.stdin.as_mut().unwrap(), "{n}").unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        let nanos: u64 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .expect("crun runner failed");
        let rss: i64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Measure {
            wall: Duration::from_nanos(nanos),
            max_rss_kib: rss,
        }
    }
}

impl Drop for CrunRunner {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The helper side: drop the cgroup2 mount from this private namespace, then run crun on request.
fn crun_runner(bundle: &str) {
    use std::io::{BufRead, Write};
    let unified = c"/sys/fs/cgroup/unified";
    // SAFETY: a valid C string; only this private mount namespace is affected.
    unsafe { libc::umount2(unified.as_ptr(), libc::MNT_DETACH) };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let n = line.unwrap();
        let m = measure(
            Command::new("crun")
                .args(["run", "--bundle", bundle])
                .arg(format!("rkt-bench-{}-{}", std::process::id(), n.trim())),
        );
        writeln!(stdout, "{} {}", m.wall.as_nanos(), m.max_rss_kib).unwrap();
        stdout.flush().unwrap();
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("crun-runner") => {
            crun_runner(&args.next().expect("bundle"));
            return;
        }
        Some("crun-mem") => {
            let bundle = args.next().expect("bundle");
            let n = args.next().and_then(|n| n.parse().ok()).expect("count");
            mem::crun_mem(&bundle, n);
            return;
        }
        Some("docker-layout") => {
            docker_layout(Path::new(&args.next().expect("dir")));
            return;
        }
        Some("make-image") => {
            let path = PathBuf::from(args.next().expect("path"));
            let total: usize = args.next().and_then(|t| t.parse().ok()).expect("size");
            let compression = Compression::from_name(&args.next().expect("compression"))
                .expect("known compression");
            make_image(&path, total, compression);
            return;
        }
        _ => {}
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("rkt-bench: needs root");
        std::process::exit(1);
    }
    let work = tempfile::Builder::new()
        .prefix("rkt-bench-")
        .tempdir_in(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .expect("work dir");
    let mut out = String::new();
    let which = std::env::args().nth(1).unwrap_or_default();
    if which.is_empty() || which == "fetch" {
        fetch_bench(&mut out, work.path());
        print!("{out}");
    }
    if which.is_empty() || which == "docker" {
        let start = out.len();
        docker_bench(&mut out, work.path());
        print!("{}", &out[start..]);
    }
    if which.is_empty() || which == "run" {
        let start = out.len();
        run_bench(&mut out, work.path());
        print!("{}", &out[start..]);
    }
    if which.is_empty() || which == "mem" {
        let start = out.len();
        mem::mem_bench(&mut out, work.path());
        print!("{}", &out[start..]);
    }
    if which.is_empty() || which == "net" {
        let start = out.len();
        net::net_bench(&mut out, work.path());
        print!("{}", &out[start..]);
    }
    if which.is_empty() || which == "scale" {
        let start = out.len();
        scale::scale_bench(&mut out, work.path());
        print!("{}", &out[start..]);
    }
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results.md");
    std::fs::write(&results, &out).expect("write results");
    eprintln!("results written to {}", results.display());
}
