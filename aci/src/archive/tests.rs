//! Round trips through the builder and the reader, and the overwrite (rendering) semantics.
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use sha2::{Digest, Sha512};

use super::testutil::{RawTar, Scratch, MANIFEST};
use super::{decompressor, read_aci, AciBuilder, Compression, ImageId, ReadOptions};
use crate::schema::{App, ImageManifest};
use crate::AciError;

fn manifest() -> ImageManifest {
    let mut m = ImageManifest::new("example.com/roundtrip");
    m.app = Some(App {
        exec: vec!["/bin/sh".into()],
        user: "0".into(),
        group: "0".into(),
        ..App::default()
    });
    m
}

fn build(compression: Compression) -> Vec<u8> {
    let mut b = AciBuilder::new(Vec::new(), compression, &manifest()).unwrap();
    b.add_dir("/etc", 0o750).unwrap();
    b.add_file("etc/config", 0o600, b"key=value\n").unwrap();
    b.add_file("/bin/busybox", 0o4755, b"\x7fELF fake").unwrap();
    b.add_symlink("bin/sh", "/bin/busybox").unwrap();
    b.add_symlink("usr/bin/env", "../../bin/busybox").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    b.add_file("data/big", 0o644, &big).unwrap();
    let long = format!("deep/{}/file", "d".repeat(150));
    b.add_file(&long, 0o644, b"long name").unwrap();
    b.finish().unwrap()
}

fn sha512_of_decompressed(bytes: &[u8]) -> (ImageId, u64) {
    let (_, mut r) = decompressor(bytes).unwrap();
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    (
        ImageId::from_digest(&Sha512::digest(&all)),
        all.len() as u64,
    )
}

#[test]
fn round_trip_every_compression() {
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
        Compression::Zstd,
    ] {
        let aci = build(c);
        let s = Scratch::new();
        let target = s.target();
        let opts = ReadOptions {
            extract_to: Some(&target),
            ..ReadOptions::default()
        };
        let summary = read_aci(&aci[..], &opts).unwrap();
        assert_eq!(summary.compression, c);
        let (id, size) = sha512_of_decompressed(&aci);
        assert_eq!(summary.id, id, "{c}");
        assert_eq!(summary.tar_size, size);
        assert_eq!(summary.manifest, manifest());
        assert_eq!(summary.manifest_bytes, manifest().to_json());
        assert_eq!(
            std::fs::read(target.join("manifest")).unwrap(),
            manifest().to_json()
        );

        let root = target.join("rootfs");
        let mode = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("etc"), 0o750);
        assert_eq!(mode("etc/config"), 0o600);
        assert_eq!(mode("bin/busybox"), 0o4755);
        assert_eq!(mode("usr"), 0o755, "implicit parent");
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap().to_str(),
            Some("/bin/busybox")
        );
        assert_eq!(
            std::fs::read_link(root.join("usr/bin/env"))
                .unwrap()
                .to_str(),
            Some("../../bin/busybox")
        );
        assert_eq!(
            std::fs::read(root.join("etc/config")).unwrap(),
            b"key=value\n"
        );
        assert_eq!(
            std::fs::metadata(root.join("data/big")).unwrap().len(),
            3_000_000
        );
        let long = format!("deep/{}/file", "d".repeat(150));
        assert_eq!(std::fs::read(root.join(long)).unwrap(), b"long name");
        assert_eq!(
            std::fs::metadata(root.join("etc/config")).unwrap().mtime(),
            0
        );
    }
}

#[test]
fn builder_is_deterministic_and_rejects_bad_input() {
    assert_eq!(build(Compression::None), build(Compression::None));
    assert_eq!(build(Compression::Zstd), build(Compression::Zstd));
    let mut b = AciBuilder::new(Vec::new(), Compression::None, &manifest()).unwrap();
    b.add_file("a/b", 0o644, b"").unwrap();
    assert!(b.add_file("/a/b", 0o644, b"").is_err(), "duplicate");
    assert!(
        b.add_dir("a", 0o755).is_ok(),
        "implicit parent with the same mode"
    );
    assert!(
        b.add_dir("a", 0o700).is_err(),
        "implicit parent with another mode"
    );
    assert!(b.add_file("../x", 0o644, b"").is_err());
    assert!(b.add_file("", 0o644, b"").is_err());
    let bad = ImageManifest::new("Bad Name");
    assert!(AciBuilder::new(Vec::new(), Compression::None, &bad).is_err());
    assert!(AciBuilder::with_manifest_bytes(Vec::new(), Compression::None, b"{}").is_err());
}

#[test]
fn add_tree_copies_host_directory() {
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    std::fs::create_dir_all(h.join("bin")).unwrap();
    std::fs::write(h.join("bin/tool"), "tool").unwrap();
    std::fs::set_permissions(h.join("bin/tool"), std::fs::Permissions::from_mode(0o751)).unwrap();
    std::os::unix::fs::symlink("tool", h.join("bin/alias")).unwrap();
    std::fs::create_dir(h.join("empty")).unwrap();
    std::fs::set_permissions(h.join("empty"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        h.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();

    let mut b = AciBuilder::new(Vec::new(), Compression::Gzip, &manifest()).unwrap();
    b.add_tree(h, "/").unwrap();
    b.add_tree(&h.join("bin"), "/opt/copy").unwrap();
    let aci = b.finish().unwrap();

    let s = Scratch::new();
    let target = s.target();
    let opts = ReadOptions {
        extract_to: Some(&target),
        rootfs_only: true,
        ..ReadOptions::default()
    };
    read_aci(&aci[..], &opts).unwrap();
    assert!(!target.join("manifest").exists(), "rootfs only");
    let mode = |p: &str| std::fs::symlink_metadata(target.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("bin/tool"), 0o751);
    assert_eq!(mode("empty"), 0o1777);
    assert_eq!(mode("pipe"), 0o600);
    assert_eq!(mode("opt/copy/tool"), 0o751);
    assert_eq!(
        std::fs::read_link(target.join("opt/copy/alias"))
            .unwrap()
            .to_str(),
        Some("tool")
    );
    assert_eq!(mode(""), 0o755, "rootfs entry applied to the target itself");
    if rustix::process::geteuid().is_root() {
        assert_eq!(std::fs::metadata(target.join("bin/tool")).unwrap().uid(), 0);
    }
}

#[test]
fn id_covers_padding_after_the_tar_end() {
    let mut tar = RawTar::image().file(b"rootfs/a", b"x").finish();
    tar.extend(std::iter::repeat_n(0u8, 10_240));
    let summary = read_aci(&tar[..], &ReadOptions::default()).unwrap();
    assert_eq!(summary.tar_size, tar.len() as u64);
    assert_eq!(summary.id, ImageId::from_digest(&Sha512::digest(&tar)));
    assert_eq!(summary.compression, Compression::None);
    assert_eq!(summary.manifest_bytes, MANIFEST.as_bytes());
}

#[test]
fn validation_only_reads_without_writing() {
    let tar = RawTar::image()
        .file(b"./rootfs/a", b"x")
        .symlink(b"rootfs/l", b"a")
        .finish();
    let summary = read_aci(&tar[..], &ReadOptions::default()).unwrap();
    assert_eq!(summary.manifest.name, "example.com/test");
    // Layout problems are found without a target too.
    let tar = RawTar::image().file(b"other", b"x").finish();
    assert!(matches!(
        read_aci(&tar[..], &ReadOptions::default()),
        Err(AciError::OutsideRootfs { .. })
    ));
}

/// Extracts `layers` in order into one target with `overwrite`, as rendering does.
fn render(s: &Scratch, layers: &[Vec<u8>]) {
    let target = s.target();
    for layer in layers {
        let opts = ReadOptions {
            extract_to: Some(&target),
            overwrite: true,
            ..ReadOptions::default()
        };
        read_aci(&layer[..], &opts).unwrap();
    }
}

#[test]
fn overwrite_replaces_without_following() {
    let s = Scratch::new();
    let before = s.outside_snapshot();
    let outside = s.outside();
    let abs = outside.to_str().unwrap().as_bytes();
    let precious = outside.join("precious");
    let mut lower = RawTar::image();
    lower
        .symlink(b"rootfs/lib", abs)
        .symlink(b"rootfs/f", precious.to_str().unwrap().as_bytes())
        .dir(b"rootfs/d")
        .file(b"rootfs/d/inner", b"x")
        .file(b"rootfs/plain", b"old")
        .dir_mode(b"rootfs/keep", 0o700)
        .file(b"rootfs/keep/child", b"c")
        .file(b"rootfs/x", b"file");
    let mut upper = RawTar::image();
    upper
        .dir(b"rootfs/lib") // symlink-to-dir replaced, not followed
        .file(b"rootfs/lib/libc.so", b"elf")
        .file(b"rootfs/f", b"new") // file over a symlink pointing outside
        .file(b"rootfs/d", b"now a file") // non-directory over a directory tree
        .hardlink(b"rootfs/plain", b"rootfs/x") // link over a file, to a lower layer's file
        .dir_mode(b"rootfs/keep", 0o751) // directory over directory: metadata only
        .dir(b"rootfs/x"); // directory over a file
    render(&s, &[lower.finish(), upper.finish()]);
    let root = s.target().join("rootfs");
    assert!(std::fs::symlink_metadata(root.join("lib"))
        .unwrap()
        .is_dir());
    assert_eq!(std::fs::read(root.join("lib/libc.so")).unwrap(), b"elf");
    assert_eq!(std::fs::read(root.join("f")).unwrap(), b"new");
    assert!(!std::fs::symlink_metadata(root.join("f"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(root.join("d")).unwrap(), b"now a file");
    assert_eq!(std::fs::read(root.join("plain")).unwrap(), b"file");
    assert_eq!(
        std::fs::metadata(root.join("keep")).unwrap().mode() & 0o7777,
        0o751
    );
    assert_eq!(std::fs::read(root.join("keep/child")).unwrap(), b"c");
    assert!(root.join("x").is_dir());
    assert_eq!(s.outside_snapshot(), before);
    assert_eq!(std::fs::read_to_string(precious).unwrap(), "keep");
}

#[test]
fn without_overwrite_existing_entries_are_errors() {
    let s = Scratch::new();
    let target = s.target();
    std::fs::create_dir_all(target.join("rootfs")).unwrap();
    std::fs::write(target.join("rootfs/a"), "existing").unwrap();
    let tar = RawTar::image().file(b"rootfs/a", b"new").finish();
    let opts = ReadOptions {
        extract_to: Some(&target),
        ..ReadOptions::default()
    };
    let err = read_aci(&tar[..], &opts).unwrap_err();
    assert!(matches!(err, AciError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("\"rootfs/a\""));
    assert_eq!(
        std::fs::read_to_string(target.join("rootfs/a")).unwrap(),
        "existing"
    );
}

#[test]
fn missing_target_directory() {
    let s = Scratch::new();
    let missing = s.dir.path().join("nope");
    let opts = ReadOptions {
        extract_to: Some(&missing),
        ..ReadOptions::default()
    };
    let tar = RawTar::image().finish();
    assert!(matches!(
        read_aci(&tar[..], &opts),
        Err(AciError::Target { .. })
    ));
}
