//! Hostile images and data directories: bombs stay out of the store, files come out of blobs
//! only when their hash matches, planted symlinks are refused.
use std::io::{Cursor, Write};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use aci::archive::{AciBuilder, Compression, LimitExceeded, Limits};
use aci::schema::ImageManifest;

use crate::{ImageKey, ImportOptions, Store, StoreError};

const GIB: u64 = 1 << 30;

fn rendering() -> ImportOptions {
    ImportOptions {
        render: true,
        ..ImportOptions::default()
    }
}

/// Nothing in the store: no image, no tree, nothing left in `cas/tmp`.
#[track_caller]
fn assert_empty(store: &Store) {
    assert!(store.images().unwrap().is_empty(), "an image was stored");
    assert!(store.trees().unwrap().is_empty(), "a tree was stored");
    let tmp: Vec<_> = std::fs::read_dir(store.dir().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(tmp.is_empty(), "left in cas/tmp: {tmp:?}");
}

fn zeros_image(c: Compression, size: usize) -> Vec<u8> {
    let m = ImageManifest::new("example.com/zeros");
    let mut b = AciBuilder::new(Vec::new(), c, &m).unwrap();
    b.add_file("zeros", 0o644, &vec![0u8; size]).unwrap();
    b.finish().unwrap()
}

/// A GNU header with every numeric field set (the reader refuses empty ones).
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// An uncompressed ACI whose only file is a GNU sparse member of `size` bytes ending in
/// "tail".
fn sparse_image(size: u64) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let manifest =
        br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/sparse"}"#;
    let mut h = header(tar::EntryType::Regular, 0o644, manifest.len() as u64);
    out.append_data(&mut h, "manifest", &manifest[..]).unwrap();
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    out.append_data(&mut h, "rootfs", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::GNUSparse, 0o644, 4);
    h.as_old_mut().name[..11].copy_from_slice(b"rootfs/bomb");
    let gnu = h.as_gnu_mut().unwrap();
    gnu.set_real_size(size);
    gnu.sparse[0].set_offset(size - 4);
    gnu.sparse[0].set_length(4);
    h.set_cksum();
    // Raw, since the builder would write the header's size as the apparent size.
    let raw = out.get_mut();
    raw.extend_from_slice(h.as_bytes());
    let mut data = b"tail".to_vec();
    data.resize(512, 0);
    raw.extend_from_slice(&data);
    out.into_inner().unwrap()
}

#[test]
fn zero_bombs_leave_nothing_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let tight = Limits {
        expansion_floor: 1 << 20,
        ..Limits::default()
    };
    store.set_limits(tight);
    for c in [Compression::Gzip, Compression::Xz, Compression::Zstd] {
        let bomb = zeros_image(c, 16 << 20);
        let err = store
            .import(&mut Cursor::new(&bomb), &rendering())
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Limit(LimitExceeded::Expansion { limit: 256, .. })
            ),
            "{c}: {err}"
        );
        assert!(err
            .to_string()
            .starts_with("image exceeds the expansion limit"));
        assert_empty(&store);
    }
    // Raising the limit lets the same image in.
    store.set_limits(Limits {
        max_expansion_ratio: 1 << 20,
        ..tight
    });
    let bomb = zeros_image(Compression::Zstd, 16 << 20);
    let info = store.import(&mut Cursor::new(&bomb), &rendering()).unwrap();
    assert!(store.tree_sizes().unwrap()[&info.image_key()] > 16 << 20);
    // Reading the blob back is bounded too (hashing a stored bomb imported with a higher limit).
    store.set_limits(tight);
    let err = store.verify_blob(&info.image_key()).unwrap_err();
    assert!(matches!(err, StoreError::Limit(_)), "{err}");
}

#[test]
fn sparse_bombs_are_stored_as_holes_and_count_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bomb = sparse_image(GIB);
    let info = store.import(&mut Cursor::new(&bomb), &rendering()).unwrap();
    let tree = store
        .tree(&crate::TreeId::for_images(&[info.image_key()]))
        .unwrap()
        .unwrap();
    let meta = std::fs::metadata(tree.rootfs().join("bomb")).unwrap();
    assert_eq!(meta.len(), GIB);
    assert!(meta.blocks() * 512 <= 64 * 4096, "{} blocks", meta.blocks());
    let du: u64 = walk_blocks(dir.path());
    assert!(du < 16 << 20, "the data directory uses {du} bytes");

    // With a smaller size limit the same image is refused and nothing stays.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.set_limits(Limits {
        max_rendered_size: GIB / 2,
        ..Limits::default()
    });
    let err = store
        .import(&mut Cursor::new(&bomb), &rendering())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Limit(LimitExceeded::RenderedSize { .. })),
        "{err}"
    );
    assert_empty(&store);
    // Imported without rendering (validation applies the limit as well).
    let err = store
        .import(&mut Cursor::new(&bomb), &ImportOptions::default())
        .unwrap_err();
    assert!(matches!(err, StoreError::Limit(_)), "{err}");
    assert_empty(&store);
}

#[test]
fn rendering_applies_the_limits_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let bomb = sparse_image(GIB);
    let key = store
        .import(&mut Cursor::new(&bomb), &ImportOptions::default())
        .unwrap()
        .image_key();
    store.set_limits(Limits {
        max_rendered_size: GIB / 2,
        ..Limits::default()
    });
    let err = store.render_tree(&key, crate::TreeCheck::Full).unwrap_err();
    assert!(matches!(err, StoreError::Limit(_)), "{err}");
    assert!(store.trees().unwrap().is_empty());
}

fn walk_blocks(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.path().symlink_metadata().unwrap();
        total += m.blocks() * 512;
        if m.is_dir() {
            total += walk_blocks(&e.path());
        }
    }
    total
}

fn entrypoint_image(c: Compression) -> Vec<u8> {
    let m = ImageManifest::new("example.com/stage1");
    let mut b = AciBuilder::new(Vec::new(), c, &m).unwrap();
    b.add_file("init", 0o755, b"#!init binary").unwrap();
    b.add_symlink("enter", "init").unwrap();
    b.add_dir("dir", 0o755).unwrap();
    b.finish().unwrap()
}

#[test]
fn verified_files_come_from_the_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let key = store
        .import(
            &mut Cursor::new(entrypoint_image(Compression::Gzip)),
            &rendering(),
        )
        .unwrap()
        .image_key();
    for path in ["init", "/init", "./init"] {
        let mut out = Vec::new();
        assert!(store.read_verified_file(&key, path, &mut out, 100).unwrap());
        assert_eq!(out, b"#!init binary", "{path}");
    }
    for path in ["enter", "dir", "missing", "/"] {
        let mut out = Vec::new();
        assert!(!store.read_verified_file(&key, path, &mut out, 100).unwrap());
        assert!(out.is_empty());
    }
    let err = store
        .read_verified_file(&key, "init", &mut Vec::new(), 5)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("file init of image {key} is 13 bytes, more than the 5 bytes allowed")
    );
}

#[test]
fn verified_files_follow_simple_hard_links() {
    let manifest = br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/l"}"#;
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |kind, name: &str, link: Option<&str>, data: &[u8]| {
        let mut h = header(kind, 0o755, data.len() as u64);
        match link {
            Some(l) => b.append_link(&mut h, name, l).unwrap(),
            None => b.append_data(&mut h, name, data).unwrap(),
        }
    };
    add(tar::EntryType::Regular, "manifest", None, manifest);
    add(tar::EntryType::Directory, "rootfs", None, b"");
    add(
        tar::EntryType::Regular,
        "rootfs/stage1",
        None,
        b"the binary",
    );
    add(
        tar::EntryType::Link,
        "rootfs/init",
        Some("rootfs/stage1"),
        b"",
    );
    let tar = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let key = store
        .import(&mut Cursor::new(tar), &ImportOptions::default())
        .unwrap()
        .image_key();
    let mut out = Vec::new();
    assert!(store
        .read_verified_file(&key, "/init", &mut out, 100)
        .unwrap());
    assert_eq!(out, b"the binary");
}

/// Replaces the stored blob of `key` by `bytes`, as an attacker with access to the store would.
fn tamper(store: &Store, key: &ImageKey, bytes: &[u8]) {
    let path = store.dir().join("image").join(key.as_str()).join("blob");
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn tampered_blobs_are_corrupt_images() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let original = entrypoint_image(Compression::None);
    let key = store
        .import(&mut Cursor::new(&original), &ImportOptions::default())
        .unwrap()
        .image_key();
    let i = original
        .windows(13)
        .position(|w| w == b"#!init binary")
        .unwrap();
    let mut evil = original.clone();
    evil[i..i + 13].copy_from_slice(b"#!evil binary");
    // Verified once, so later reads of the unchanged blob skip the hash; a rewrite changes the
    // blob's ctime and brings the hash back.
    let mut out = Vec::new();
    assert!(store
        .read_verified_file(&key, "init", &mut out, 100)
        .unwrap());
    assert!(store
        .read_verified_file(&key, "init", &mut out, 100)
        .unwrap());
    // Uncompressed, and recompressed so that only the hash can tell.
    let mut gz = regzip(&evil);
    for bytes in [evil.clone(), std::mem::take(&mut gz)] {
        tamper(&store, &key, &bytes);
        let mut out = Vec::new();
        let err = store
            .read_verified_file(&key, "init", &mut out, 100)
            .unwrap_err();
        assert!(matches!(err, StoreError::CorruptImage { .. }), "{err}");
    }
    // A blob that no longer parses is corrupt as well, not "not found".
    let mut cut = original.clone();
    cut.truncate(i);
    tamper(&store, &key, &cut);
    let err = store
        .read_verified_file(&key, "init", &mut Vec::new(), 100)
        .unwrap_err();
    assert!(matches!(err, StoreError::CorruptImage { .. }), "{err}");
}

/// Re-packs the uncompressed ACI `evil` (manifest and regular files) as a gzip one with the
/// builder, the store having no compressor of its own.
fn regzip(evil: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(evil);
    let mut manifest = Vec::new();
    let mut files = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if name == "manifest" {
            manifest = data;
        } else if e.header().entry_type() == tar::EntryType::Regular {
            files.push((name, data));
        }
    }
    let mut b = AciBuilder::with_manifest_bytes(&mut out, Compression::Gzip, &manifest).unwrap();
    for (name, data) in files {
        b.add_file(name.trim_start_matches("rootfs/"), 0o755, &data)
            .unwrap();
    }
    b.finish().unwrap().flush().unwrap();
    out
}

#[test]
fn planted_symlinks_in_the_data_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    symlink(&target, data.join("cas")).unwrap();
    let err = Store::open(&data).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}/cas is a symlink; rkt's data directory must contain real directories",
            data.display()
        )
    );
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755, "the symlink's target was chmodded");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    // Below cas as well.
    std::fs::remove_file(data.join("cas")).unwrap();
    std::fs::create_dir(data.join("cas")).unwrap();
    symlink(&target, data.join("cas/tmp")).unwrap();
    let err = Store::open(&data).unwrap_err();
    assert!(
        matches!(err, StoreError::Symlink(ref p) if p.ends_with("cas/tmp")),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    // A file where a directory belongs.
    std::fs::remove_file(data.join("cas/tmp")).unwrap();
    std::fs::write(data.join("cas/tmp"), "").unwrap();
    let err = Store::open(&data).unwrap_err();
    assert!(matches!(err, StoreError::NotDirectory(_)), "{err}");

    // The data directory itself may be a symlink (rkt canonicalizes --dir anyway), and a
    // world-readable cas is fixed through its descriptor.
    std::fs::remove_file(data.join("cas/tmp")).unwrap();
    std::fs::set_permissions(data.join("cas"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = dir.path().join("data-link");
    symlink(&data, &link).unwrap();
    Store::open(&link).unwrap();
    let mode = std::fs::metadata(data.join("cas"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o700);
}
