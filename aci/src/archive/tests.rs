//! Round trips through the builder and the reader, and the overwrite (rendering) semantics.
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use sha2::{Digest, Sha512};

use super::testutil::{RawTar, Scratch, Spec, MANIFEST};
use super::{read_aci, AciBuilder, Compression, ImageId, LimitedDecompressor, Limits, ReadOptions};
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
    let mut r = LimitedDecompressor::new(bytes, Limits::default()).unwrap();
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

/// `tar` output is padded with zeros to a whole record (GNU tar: 20 blocks of 512 bytes).
fn gnu_record_padded(mut tar: Vec<u8>) -> Vec<u8> {
    let len = tar.len().div_ceil(10_240) * 10_240;
    tar.resize(len, 0);
    tar
}

#[test]
fn gnu_tar_record_padding_is_accepted_and_hashed() {
    let tar = gnu_record_padded(RawTar::image().file(b"rootfs/a", b"x").finish());
    assert_eq!(tar.len(), 10_240);
    let summary = read_aci(&tar[..], &ReadOptions::default()).unwrap();
    assert_eq!(summary.id, ImageId::from_digest(&Sha512::digest(&tar)));
    assert_eq!(summary.tar_size, 10_240);
    // Compressed the same way, the ID is that of the decompressed stream.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let summary = read_aci(&gz.finish().unwrap()[..], &ReadOptions::default()).unwrap();
    assert_eq!(summary.id, ImageId::from_digest(&Sha512::digest(&tar)));
    assert_eq!(summary.compression, Compression::Gzip);
}

#[test]
fn builder_archives_end_without_extra_padding() {
    // Our builder writes the two end blocks only; the ID is the SHA-512 of exactly that.
    let aci = build(Compression::None);
    assert!(aci.ends_with(&[0u8; 1024]));
    let summary = read_aci(&aci[..], &ReadOptions::default()).unwrap();
    assert_eq!(summary.id, ImageId::from_digest(&Sha512::digest(&aci)));
    assert_eq!(summary.tar_size, aci.len() as u64);
}

#[test]
fn trailing_zeros_up_to_the_limit() {
    // RawTar ends with two zero blocks: the reader stops after the first, so 512 bytes of the
    // second already count as trailing.
    let base = RawTar::image().finish();
    let max = super::MAX_TRAILING_BYTES as usize;
    let mut tar = base.clone();
    tar.resize(base.len() + max - 512, 0);
    let summary = read_aci(&tar[..], &ReadOptions::default()).unwrap();
    assert_eq!(summary.id, ImageId::from_digest(&Sha512::digest(&tar)));
    tar.push(0);
    let err = read_aci(&tar[..], &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(err, AciError::TrailingTooLong { max: m } if m == max as u64),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("trailing data after the end of the archive"),
        "{err}"
    );
}

#[test]
fn non_zero_trailing_data_is_refused() {
    let mut tar = RawTar::image().finish();
    tar.extend_from_slice(b"\0\0\0garbage");
    let err = read_aci(&tar[..], &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(err, AciError::TrailingData { offset: 515 }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("trailing data after the end of the archive"),
        "{err}"
    );
    // A second archive after the first is trailing data too (it would not be extracted).
    let mut two = RawTar::image().finish();
    two.extend(RawTar::image().file(b"rootfs/x", b"x").finish());
    assert!(matches!(
        read_aci(&two[..], &ReadOptions::default()),
        Err(AciError::TrailingData { offset: 512 })
    ));
    // Compressed streams are checked after decompression.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    assert!(matches!(
        read_aci(&gz.finish().unwrap()[..], &ReadOptions::default()),
        Err(AciError::TrailingData { .. })
    ));
}

#[test]
fn endless_inputs_end_quickly() {
    // `rkt fetch /dev/zero`: the first block is already an end marker.
    let err = read_aci(std::io::repeat(0), &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, AciError::MissingManifest), "{err}");
    // A valid image followed by endless zeros stops after the limit.
    let tar = RawTar::image().finish();
    let endless = (&tar[..]).chain(std::io::repeat(0));
    let err = read_aci(endless, &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, AciError::TrailingTooLong { .. }), "{err}");
    // Likewise through a decompressor: 8 MiB of zeros after the archive, gzip-compressed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    std::io::Write::write_all(&mut gz, &vec![0u8; 8 << 20]).unwrap();
    let err = read_aci(&gz.finish().unwrap()[..], &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, AciError::TrailingTooLong { .. }), "{err}");
}

#[test]
fn drain_trailing_is_bounded() {
    let max = super::MAX_TRAILING_BYTES;
    assert_eq!(super::drain_trailing(&mut &b""[..]).unwrap(), 0);
    let data = vec![7u8; max as usize];
    assert_eq!(super::drain_trailing(&mut &data[..]).unwrap(), max);
    let err = super::drain_trailing(&mut std::io::repeat(1)).unwrap_err();
    assert!(
        matches!(err, AciError::TrailingTooLong { max: m } if m == max),
        "{err}"
    );
    // Works on a trait object, as the store holds its input.
    let mut input: &mut dyn Read = &mut &b"abc"[..];
    assert_eq!(super::drain_trailing(&mut input).unwrap(), 3);
}

/// Enough regular files that the extractor names files made ahead (see the `spares` module)
/// when it runs as root; without root every file is created by name, and the result is the
/// same.
fn many_files(content: &str) -> Vec<u8> {
    let mut t = RawTar::image();
    t.dir(b"rootfs/many");
    for i in 0..300 {
        let name = format!("rootfs/many/f{i:03}");
        t.raw(
            name.as_bytes(),
            Spec {
                mode: if i == 200 { 0o4750 } else { 0o640 },
                uid: 1000 + i as u64,
                gid: 2000,
                ..Spec::default()
            },
            format!("{content} {i}").as_bytes(),
        );
    }
    t.finish()
}

#[test]
fn many_files_keep_content_owner_mode_and_times() {
    let root_user = rustix::process::geteuid().is_root();
    let s = Scratch::new();
    let before = s.outside_snapshot();
    let target = s.target();
    let check = |content: &str| {
        for i in 0..300 {
            let path = target.join(format!("rootfs/many/f{i:03}"));
            let meta = std::fs::symlink_metadata(&path).unwrap();
            assert!(meta.file_type().is_file(), "{}", path.display());
            assert_eq!(meta.nlink(), 1, "{}", path.display());
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                format!("{content} {i}")
            );
            let mode = if i == 200 { 0o4750 } else { 0o640 };
            assert_eq!(meta.mode() & 0o7777, mode, "{}", path.display());
            assert_eq!(meta.mtime(), 1_500_000_000);
            if root_user {
                assert_eq!((meta.uid(), meta.gid()), (1000 + i, 2000));
            }
        }
        let names = std::fs::read_dir(target.join("rootfs/many"))
            .unwrap()
            .count();
        assert_eq!(names, 300, "nothing but the members");
    };
    render(&s, &[many_files("first")]);
    check("first");
    // Over the same names: each is replaced (a name never follows or keeps the old file).
    render(&s, &[many_files("second")]);
    check("second");
    // Without overwrite, an existing name is an error, as for a file created by name.
    let opts = ReadOptions {
        extract_to: Some(&target),
        ..ReadOptions::default()
    };
    std::fs::remove_dir_all(target.join("rootfs/many")).unwrap();
    std::fs::create_dir(target.join("rootfs/many")).unwrap();
    std::fs::write(target.join("rootfs/many/f250"), "existing").unwrap();
    std::fs::remove_file(target.join("manifest")).unwrap();
    let err = read_aci(&many_files("third")[..], &opts).unwrap_err();
    assert!(
        matches!(&err, AciError::Exists { entry } if entry == "rootfs/many/f250"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("rootfs/many/f250")).unwrap(),
        "existing"
    );
    assert_eq!(s.outside_snapshot(), before);
    if !root_user {
        eprintln!("SKIP many_files_keep_content_owner_mode_and_times (spare files): needs root");
    }
}
