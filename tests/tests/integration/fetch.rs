//! `rkt fetch`: import, IDs, compression, signatures, hostile archives, concurrency, kills.
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use aci::archive::Compression;
use rkt_tests::hostile::{manifest, tar, RawEntry};
use rkt_tests::{require_root, ImageSpec, TestEnv};

/// SHA-512 of the decompressed bytes, as `sha512-<128 hex>`.
fn image_id_of(path: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc {path} | sha512sum"))
        .output()
        .unwrap();
    format!(
        "sha512-{}",
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
    )
}

fn store_entries(env: &TestEnv, sub: &str) -> Vec<String> {
    std::fs::read_dir(env.data_dir().join("cas").join(sub))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn fetch_prints_the_short_image_id_and_full_with_flag() {
    if !require_root("fetch_prints_the_short_image_id_and_full_with_flag") {
        return;
    }
    let env = TestEnv::new();
    let aci = env.image(
        &ImageSpec::shell("example.com/hello", "echo hi"),
        "hello.aci",
    );
    let id = image_id_of(&aci);
    let short = env.rkt(&["--insecure-options=image", "fetch", &aci]);
    assert_eq!(short.ok(), format!("{}\n", &id[..7 + 32]), "{short:?}");
    assert!(short.stderr.is_empty(), "{short:?}");
    let full = env.rkt(&["--insecure-options=image", "fetch", "--full", &aci]);
    assert_eq!(full.ok(), format!("{}\n", &id[..7 + 64]));
    // The same flags work after the subcommand and after the image, pflag style.
    let after = env.rkt(&["fetch", &aci, "--insecure-options=image", "--full=false"]);
    assert_eq!(after.ok(), format!("{}\n", &id[..7 + 32]));
    assert_eq!(store_entries(&env, "image").len(), 1);
}

#[test]
fn every_compression_gives_the_same_image_id() {
    if !require_root("every_compression_gives_the_same_image_id") {
        return;
    }
    let env = TestEnv::new();
    let spec = ImageSpec::shell("example.com/compressed", "true");
    let mut ids = Vec::new();
    for (c, name) in [
        (Compression::None, "none"),
        (Compression::Gzip, "gzip"),
        (Compression::Bzip2, "bzip2"),
        (Compression::Xz, "xz"),
        (Compression::Zstd, "zstd"),
    ] {
        let aci = env.image(&spec.clone().compression(c), &format!("{name}.aci"));
        let out = env.rkt(&["--insecure-options=image", "fetch", "--full", &aci]);
        ids.push(out.ok().trim().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "compressions gave different IDs: {ids:?}");
    assert_eq!(store_entries(&env, "image").len(), 1);
}

#[test]
fn fetch_without_insecure_image_refuses_unverified_images() {
    if !require_root("fetch_without_insecure_image_refuses_unverified_images") {
        return;
    }
    let env = TestEnv::new();
    let aci = env.image(
        &ImageSpec::shell("example.com/unsigned", "true"),
        "unsigned.aci",
    );
    let out = env.rkt(&["fetch", &aci]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.starts_with("fetch: "), "{out:?}");
    assert!(out.stderr.contains("--insecure-options=image"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(store_entries(&env, "image").is_empty());
}

#[test]
fn bad_global_flags_are_errors() {
    if !require_root("bad_global_flags_are_errors") {
        return;
    }
    let env = TestEnv::new();
    let out = env.rkt(&["--insecure-options=image,bogus", "image", "list"]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("bogus"), "{out:?}");
    let out = env.rkt(&["--debug=maybe", "image", "list"]);
    assert_eq!(out.code, 254, "{out:?}");
    assert_eq!(
        out.stderr,
        "Error: invalid argument \"maybe\" for \"--debug\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax\n"
    );
}

/// Each hostile archive: exit 254, one line naming the problem, nothing stored, nothing
/// written outside.
#[test]
fn hostile_archives_are_refused_cleanly() {
    if !require_root("hostile_archives_are_refused_cleanly") {
        return;
    }
    let env = TestEnv::new();
    let m = manifest("example.com/evil");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            tar(&[
                RawEntry::file("manifest", &m),
                RawEntry::dir("rootfs"),
                RawEntry::file("rootfs/../../escaped", b"x"),
            ]),
        ),
        (
            "absolute",
            tar(&[
                RawEntry::file("manifest", &m),
                RawEntry::dir("rootfs"),
                RawEntry::file("/tmp/rkt-test-absolute", b"x"),
            ]),
        ),
        (
            "symlink-then-write",
            tar(&[
                RawEntry::file("manifest", &m),
                RawEntry::dir("rootfs"),
                RawEntry::symlink("rootfs/evil", "/tmp"),
                RawEntry::file("rootfs/evil/rkt-test-through-link", b"x"),
            ]),
        ),
        (
            "relative-symlink-escape",
            tar(&[
                RawEntry::file("manifest", &m),
                RawEntry::dir("rootfs"),
                RawEntry::symlink("rootfs/up", "../../../../../../etc"),
            ]),
        ),
        (
            "hardlink-outside",
            tar(&[
                RawEntry::file("manifest", &m),
                RawEntry::dir("rootfs"),
                RawEntry::hardlink("rootfs/shadow", "/etc/shadow"),
            ]),
        ),
        (
            "no-manifest",
            tar(&[RawEntry::dir("rootfs"), RawEntry::file("rootfs/a", b"x")]),
        ),
        (
            "bad-manifest",
            tar(&[
                RawEntry::file("manifest", b"{not json"),
                RawEntry::dir("rootfs"),
            ]),
        ),
        (
            "extra-top-level",
            tar(&[
                RawEntry::file("manifest", &m),
                RawEntry::dir("rootfs"),
                RawEntry::file("other", b"x"),
            ]),
        ),
        (
            "duplicate",
            tar(&[
                RawEntry::file("manifest", &m),
                RawEntry::dir("rootfs"),
                RawEntry::file("rootfs/a", b"1"),
                RawEntry::file("rootfs/a", b"2"),
            ]),
        ),
        (
            "huge-manifest",
            tar(&[
                RawEntry::file("manifest", &vec![b' '; 8 * 1024 * 1024]),
                RawEntry::dir("rootfs"),
            ]),
        ),
    ];
    for (name, bytes) in cases {
        let path = env.work().join(format!("{name}.aci"));
        std::fs::write(&path, &bytes).unwrap();
        let out = env.rkt(&["--insecure-options=image", "fetch", path.to_str().unwrap()]);
        assert_eq!(out.code, 254, "{name}: {out:?}");
        assert_eq!(
            out.stderr.trim_end().lines().count(),
            1,
            "{name}: one line expected: {out:?}"
        );
        assert!(out.stderr.starts_with("fetch: "), "{name}: {out:?}");
        assert!(
            store_entries(&env, "image").is_empty(),
            "{name}: image stored"
        );
        assert!(store_entries(&env, "tree").is_empty(), "{name}: tree left");
    }
    assert!(!std::path::Path::new("/tmp/rkt-test-absolute").exists());
    assert!(!std::path::Path::new("/tmp/rkt-test-through-link").exists());
    assert!(!env.work().join("escaped").exists() && !env.data_dir().join("escaped").exists());

    // A truncated compressed archive.
    let good = env.image(
        &ImageSpec::shell("example.com/truncated", "true"),
        "good.aci",
    );
    let bytes = std::fs::read(&good).unwrap();
    let cut = env.work().join("truncated.aci");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = env.rkt(&["--insecure-options=image", "fetch", cut.to_str().unwrap()]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(store_entries(&env, "image").is_empty());
}

#[test]
fn concurrent_fetches_of_same_and_different_images() {
    if !require_root("concurrent_fetches_of_same_and_different_images") {
        return;
    }
    let env = TestEnv::new();
    let a = env.image(&ImageSpec::shell("example.com/a", "true"), "a.aci");
    let b = env.image(
        &ImageSpec::shell("example.com/b", "true").compression(Compression::Zstd),
        "b.aci",
    );
    let children: Vec<_> = [&a, &a, &b, &b, &a]
        .iter()
        .map(|img| {
            env.cmd(&["--insecure-options=image", "fetch", img])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[2], ids[3]);
    assert_ne!(ids[0], ids[2]);
    let list = env.rkt(&["image", "list", "--no-legend", "--fields=name"]);
    let mut names: Vec<_> = list.ok().lines().map(str::trim).collect();
    names.sort();
    assert_eq!(names, ["example.com/a:1.0.0", "example.com/b:1.0.0"]);
    assert_eq!(store_entries(&env, "image").len(), 2);
    let tmp_dirs: Vec<_> = store_entries(&env, "tmp");
    assert!(
        tmp_dirs.is_empty(),
        "work directories left behind: {tmp_dirs:?}"
    );
}

#[test]
fn a_fetch_killed_midway_leaves_no_entry_and_no_tree() {
    if !require_root("a_fetch_killed_midway_leaves_no_entry_and_no_tree") {
        return;
    }
    let env = TestEnv::new();
    // A big incompressible file so the import is visibly in progress.
    let mut noise = vec![0u8; 16 * 1024 * 1024];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let aci = env.image(
        &ImageSpec::shell("example.com/big", "true")
            .file("data/noise", 0o644, &noise)
            .compression(Compression::None),
        "big.aci",
    );
    let fifo = env.work().join("feed.aci");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let mut child = env
        .cmd(&["--insecure-options=image", "fetch", fifo.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&aci).unwrap();
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writer.write_all(&bytes[..bytes.len() / 2]).unwrap();
    // The import is now under way in a work directory.
    assert!(TestEnv::wait_for(Duration::from_secs(10), || {
        !store_entries(&env, "tmp").is_empty()
    }));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(writer);
    assert!(store_entries(&env, "image").is_empty(), "an entry appeared");
    assert!(store_entries(&env, "tree").is_empty(), "a tree appeared");
    let list = env.rkt(&["image", "list", "--no-legend"]);
    assert_eq!(list.ok(), "\n");
    // The next import cleans up what the killed one left.
    let small = env.image(&ImageSpec::shell("example.com/small", "true"), "small.aci");
    env.fetch(&small);
    assert!(
        store_entries(&env, "tmp").is_empty(),
        "{:?}",
        store_entries(&env, "tmp")
    );
}
