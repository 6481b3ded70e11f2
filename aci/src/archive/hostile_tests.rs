//! Hostile archives: every one must fail with an error naming the entry, and nothing may be
//! written outside the target directory.
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use tar::EntryType;

use super::testutil::{pax_record, RawTar, Scratch, Spec};
use super::{read_aci, ReadOptions};
use crate::AciError;

fn opts(s: &Scratch) -> ReadOptions<'static> {
    let target: &'static std::path::Path = Box::leak(s.target().into_boxed_path());
    ReadOptions {
        extract_to: Some(target),
        ..ReadOptions::default()
    }
}

/// Extracts `tar` into a fresh scratch target and returns the error, after checking that the
/// outside of the target is untouched.
fn hostile(tar: Vec<u8>) -> AciError {
    let s = Scratch::new();
    let before = s.outside_snapshot();
    let err = read_aci(&tar[..], &opts(&s)).expect_err("hostile archive accepted");
    assert_eq!(
        s.outside_snapshot(),
        before,
        "outside of target changed: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(s.outside().join("precious")).unwrap(),
        "keep"
    );
    err
}

fn assert_names(err: &AciError, entry: &str) {
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{entry:?}")),
        "error {msg:?} does not name {entry:?}"
    );
}

#[test]
fn absolute_and_dotdot_names() {
    let evil = format!("/tmp/aci-hostile-{}", std::process::id());
    let err = hostile(RawTar::image().file(evil.as_bytes(), b"x").finish());
    assert!(matches!(err, AciError::UnsafePath { .. }), "{err}");
    assert_names(&err, &evil);
    assert!(!std::path::Path::new(&evil).exists());

    for name in [
        "rootfs/../../escaped",
        "../escaped",
        "rootfs/a/../../../escaped",
    ] {
        let err = hostile(RawTar::image().file(name.as_bytes(), b"x").finish());
        assert!(matches!(err, AciError::UnsafePath { .. }), "{err}");
        assert_names(&err, name);
    }
}

#[test]
fn hostile_names_in_pax_and_gnu_extensions() {
    let mut t = RawTar::image();
    let pax = Spec {
        kind: EntryType::XHeader,
        ..Spec::default()
    };
    t.raw(
        b"PaxHeaders/x",
        pax,
        &pax_record("path", "rootfs/../../pax-escape"),
    );
    t.file(b"rootfs/innocent", b"x");
    let err = hostile(t.finish());
    assert!(matches!(err, AciError::UnsafePath { .. }), "{err}");
    assert_names(&err, "rootfs/../../pax-escape");

    let mut t = RawTar::image();
    let gnu = Spec {
        kind: EntryType::GNULongName,
        ..Spec::default()
    };
    t.raw(b"././@LongLink", gnu, b"/tmp/gnu-escape\0");
    t.file(b"rootfs/innocent", b"x");
    let err = hostile(t.finish());
    assert!(matches!(err, AciError::UnsafePath { .. }), "{err}");
    assert_names(&err, "/tmp/gnu-escape");

    // A PAX linkpath climbing out is caught like a plain one.
    let mut t = RawTar::image();
    let pax = Spec {
        kind: EntryType::XHeader,
        ..Spec::default()
    };
    t.raw(
        b"PaxHeaders/l",
        pax,
        &pax_record("linkpath", "../../../etc/shadow"),
    );
    t.symlink(b"rootfs/l", b"harmless");
    let err = hostile(t.finish());
    assert!(matches!(err, AciError::SymlinkEscape { .. }), "{err}");
}

#[test]
fn entries_outside_rootfs() {
    let err = hostile(RawTar::image().file(b"evil", b"x").finish());
    assert!(matches!(err, AciError::OutsideRootfs { .. }), "{err}");
    assert_names(&err, "evil");
    let err = hostile(RawTar::image().file(b"rootfsx/a", b"x").finish());
    assert_names(&err, "rootfsx/a");
}

#[test]
fn manifest_problems() {
    let mut t = RawTar::new();
    t.dir(b"rootfs").file(b"rootfs/a", b"x");
    assert!(matches!(hostile(t.finish()), AciError::MissingManifest));

    let mut t = RawTar::new();
    t.file(
        b"manifest",
        br#"{"acKind":"PodManifest","acVersion":"0.8.11","name":"x"}"#,
    );
    let err = hostile(t.finish());
    let full = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(full.contains("acKind \"PodManifest\""), "{full}");

    let mut t = RawTar::new();
    t.file(b"manifest", b"{not json");
    assert!(matches!(hostile(t.finish()), AciError::InvalidManifest(_)));

    let big = vec![b' '; (1 << 20) + 1];
    let err = hostile(RawTar::new().file(b"manifest", &big).finish());
    assert!(
        matches!(err, AciError::ManifestTooLarge { size, .. } if size == big.len() as u64),
        "{err}"
    );

    let err = hostile(RawTar::new().dir(b"manifest").finish());
    assert!(matches!(err, AciError::ManifestNotRegular { .. }), "{err}");

    let err = hostile(
        RawTar::new()
            .file(b"manifest", super::testutil::MANIFEST.as_bytes())
            .file(b"rootfs", b"")
            .finish(),
    );
    assert!(matches!(err, AciError::RootfsNotDir { .. }), "{err}");

    let err = hostile(
        RawTar::new()
            .file(b"manifest", super::testutil::MANIFEST.as_bytes())
            .finish(),
    );
    assert!(matches!(err, AciError::MissingRootfs), "{err}");
}

#[test]
fn duplicates() {
    let err = hostile(
        RawTar::image()
            .file(b"rootfs/a", b"1")
            .file(b"./rootfs//a", b"2")
            .finish(),
    );
    assert!(matches!(err, AciError::Duplicate { .. }), "{err}");
    assert_names(&err, "./rootfs//a");
    let err = hostile(
        RawTar::image()
            .file(b"manifest", super::testutil::MANIFEST.as_bytes())
            .finish(),
    );
    assert!(matches!(err, AciError::Duplicate { .. }), "{err}");
    let err = hostile(RawTar::image().dir(b"rootfs/").finish());
    assert!(matches!(err, AciError::Duplicate { .. }), "{err}");

    // With overwrite the later entry wins.
    let s = Scratch::new();
    let tar = RawTar::image()
        .file(b"rootfs/a", b"1")
        .file(b"rootfs/a", b"2")
        .finish();
    let o = ReadOptions {
        overwrite: true,
        ..opts(&s)
    };
    read_aci(&tar[..], &o).unwrap();
    assert_eq!(std::fs::read(s.target().join("rootfs/a")).unwrap(), b"2");
}

#[test]
fn truncated_and_corrupt_streams() {
    let tar = RawTar::image()
        .file(b"rootfs/big", &vec![7u8; 10_000])
        .finish();
    let err = hostile(tar[..3000].to_vec());
    assert!(
        matches!(err, AciError::Truncated { .. } | AciError::Read(_)),
        "{err}"
    );
    let mut bad_sum = tar.clone();
    bad_sum[1024 + 10] ^= 0xff; // name byte of the second header: checksum mismatch
    assert!(matches!(hostile(bad_sum), AciError::Read(_)));

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    assert!(matches!(
        hostile(gz[..gz.len() / 2].to_vec()),
        AciError::Read(_)
    ));
    let mut corrupt = gz.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x55;
    corrupt[mid + 1] ^= 0xaa;
    // Depending on where the damage lands it shows as a stream error or as a bad member.
    hostile(corrupt);

    let z = zstd::encode_all(&tar[..], 3).unwrap();
    assert!(matches!(
        hostile(z[..z.len() - 20].to_vec()),
        AciError::Read(_)
    ));
}

#[test]
fn symlink_escapes() {
    for (name, target) in [
        ("rootfs/a", "../x"),
        ("rootfs/bin/sh", "../../etc/passwd"),
        ("rootfs/a/b", "c/../../../d"),
    ] {
        let err = hostile(
            RawTar::image()
                .symlink(name.as_bytes(), target.as_bytes())
                .finish(),
        );
        assert!(matches!(err, AciError::SymlinkEscape { .. }), "{err}");
        assert_names(&err, name);
        assert!(err.to_string().contains(target));
    }
    let err = hostile(RawTar::image().symlink(b"rootfs/empty", b"").finish());
    assert!(matches!(err, AciError::EmptySymlink { .. }), "{err}");
}

#[test]
fn writes_through_symlinks_are_refused() {
    let s = Scratch::new();
    let outside = s.outside();
    let abs = outside.to_str().unwrap().as_bytes().to_vec();
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"rootfs/evil".to_vec(), b"rootfs/evil/pwned".to_vec()),
        (b"rootfs/a".to_vec(), b"rootfs/a/a/a/pwned".to_vec()),
        (b"rootfs/etc".to_vec(), b"rootfs/etc/passwd".to_vec()),
    ];
    let targets: [&[u8]; 3] = [&abs, b".", b"/etc"];
    for ((link, through), target) in cases.iter().zip(targets) {
        for kind in [
            EntryType::Regular,
            EntryType::Directory,
            EntryType::Symlink,
            EntryType::Fifo,
        ] {
            let mut t = RawTar::image();
            t.symlink(link, target);
            let spec = Spec {
                kind,
                link: b"/x",
                ..Spec::default()
            };
            t.raw(through, spec, b"");
            let err = hostile(t.finish());
            assert!(
                matches!(err, AciError::ThroughSymlink { .. }),
                "{kind:?}: {err}"
            );
            assert_names(&err, std::str::from_utf8(through).unwrap());
        }
        let mut t = RawTar::image();
        t.file(b"rootfs/real", b"data")
            .symlink(link, target)
            .hardlink(through, b"rootfs/real");
        let err = hostile(t.finish());
        assert!(matches!(err, AciError::ThroughSymlink { .. }), "{err}");
    }
    // A symlink already in the target is not followed either.
    std::os::unix::fs::symlink(&outside, s.target().join("rootfs")).unwrap();
    let tar = RawTar::new()
        .file(b"manifest", super::testutil::MANIFEST.as_bytes())
        .file(b"rootfs/pwned", b"x")
        .finish();
    let before = s.outside_snapshot();
    let err = read_aci(&tar[..], &opts(&s)).unwrap_err();
    assert!(matches!(err, AciError::ThroughSymlink { .. }), "{err}");
    assert_eq!(s.outside_snapshot(), before);
}

#[test]
fn hard_link_rules() {
    let check = |target: &[u8], problem: &str| {
        let mut t = RawTar::image();
        t.file(b"rootfs/file", b"x")
            .dir(b"rootfs/dir")
            .symlink(b"rootfs/sym", b"file");
        t.hardlink(b"rootfs/link", target);
        let err = hostile(t.finish());
        assert!(matches!(err, AciError::BadHardLink { .. }), "{err}");
        assert_names(&err, "rootfs/link");
        assert!(err.to_string().contains(problem), "{err}");
    };
    check(b"manifest", "outside rootfs/");
    check(b"/etc/passwd", "outside rootfs/");
    check(b"rootfs/../../etc/passwd", "outside rootfs/");
    check(b"rootfs/missing", "earlier regular file");
    check(b"rootfs/dir", "not a regular file");
    check(b"rootfs/sym", "not a regular file");

    // A link to a file appearing later is refused too.
    let mut t = RawTar::image();
    t.hardlink(b"rootfs/link", b"rootfs/later")
        .file(b"rootfs/later", b"x");
    assert!(matches!(hostile(t.finish()), AciError::BadHardLink { .. }));

    // The valid case shares the inode.
    let s = Scratch::new();
    let mut t = RawTar::image();
    t.file(b"rootfs/file", b"x")
        .hardlink(b"rootfs/link", b"./rootfs/file");
    read_aci(&t.finish()[..], &opts(&s)).unwrap();
    let a = std::fs::metadata(s.target().join("rootfs/file")).unwrap();
    let b = std::fs::metadata(s.target().join("rootfs/link")).unwrap();
    assert_eq!(a.ino(), b.ino());
}

#[test]
fn unsupported_entry_types() {
    let spec = Spec {
        kind: EntryType::new(b'V'),
        ..Spec::default()
    };
    let err = hostile(RawTar::image().raw(b"rootfs/vol", spec, b"").finish());
    assert!(
        matches!(err, AciError::UnsupportedType { kind: 'V', .. }),
        "{err}"
    );
}

#[test]
fn devices_ownership_and_setuid() {
    let s = Scratch::new();
    let mut t = RawTar::image();
    let dev = |kind, mode, dev| Spec {
        kind,
        mode,
        dev,
        ..Spec::default()
    };
    t.raw(b"rootfs/null", dev(EntryType::Char, 0o666, (1, 3)), b"");
    t.raw(b"rootfs/loop", dev(EntryType::Block, 0o660, (7, 0)), b"");
    t.raw(b"rootfs/fifo", dev(EntryType::Fifo, 0o620, (0, 0)), b"");
    let owned = Spec {
        mode: 0o4755,
        uid: 1234,
        gid: 5678,
        ..Spec::default()
    };
    t.raw(b"rootfs/suid", owned, b"#!/bin/sh");
    let dir_owned = Spec {
        kind: EntryType::Directory,
        mode: 0o2775,
        uid: 42,
        gid: 43,
        ..Spec::default()
    };
    t.raw(b"rootfs/shared", dir_owned, b"");
    read_aci(&t.finish()[..], &opts(&s)).unwrap();
    let root = s.target().join("rootfs");
    let fifo = std::fs::symlink_metadata(root.join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o620);
    if !rustix::process::geteuid().is_root() {
        assert!(
            !root.join("null").exists(),
            "devices are skipped without root"
        );
        return;
    }
    let null = std::fs::symlink_metadata(root.join("null")).unwrap();
    if null.file_type().is_char_device() {
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
        assert_eq!(null.mode() & 0o7777, 0o666, "umask does not apply");
        assert!(std::fs::symlink_metadata(root.join("loop"))
            .unwrap()
            .file_type()
            .is_block_device());
    } else {
        eprintln!(
            "SKIP devices_ownership_and_setuid (device part): mknod refused (user namespace?)"
        );
    }
    let suid = std::fs::metadata(root.join("suid")).unwrap();
    assert_eq!(
        (suid.uid(), suid.gid(), suid.mode() & 0o7777),
        (1234, 5678, 0o4755)
    );
    let shared = std::fs::metadata(root.join("shared")).unwrap();
    assert_eq!(
        (shared.uid(), shared.gid(), shared.mode() & 0o7777),
        (42, 43, 0o2775)
    );
}
