//! Store behaviour against real files in a temporary data directory.
use std::io::Cursor;

use aci::archive::{AciBuilder, Compression};
use aci::schema::{Dependency, ImageManifest, Label};

use crate::{ImageKey, ImportOptions, Store, StoreError, TreeCheck, TreeId};

fn manifest(name: &str, version: &str) -> ImageManifest {
    ImageManifest {
        ac_kind: "ImageManifest".into(),
        ac_version: "0.8.11".into(),
        name: name.into(),
        labels: vec![
            Label {
                name: "version".into(),
                value: version.into(),
            },
            Label {
                name: "os".into(),
                value: "linux".into(),
            },
            Label {
                name: "arch".into(),
                value: "amd64".into(),
            },
        ],
        ..ImageManifest::default()
    }
}

fn aci(m: &ImageManifest, files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = AciBuilder::new(Vec::new(), Compression::Gzip, m).unwrap();
    for (path, content) in files {
        b.add_file(path, 0o644, content.as_bytes()).unwrap();
    }
    b.finish().unwrap()
}

fn import(store: &Store, bytes: &[u8], opts: &ImportOptions) -> ImageKey {
    store
        .import(&mut Cursor::new(bytes), opts)
        .unwrap()
        .image_key()
}

fn rendering() -> ImportOptions {
    ImportOptions {
        render: true,
        ..ImportOptions::default()
    }
}

#[test]
fn import_is_idempotent_and_keeps_the_blob_as_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = aci(&manifest("example.com/a", "1.0"), &[("etc/a", "a")]);
    let key = import(&store, &bytes, &rendering());
    assert_eq!(import(&store, &bytes, &rendering()), key);
    assert_eq!(store.images().unwrap().len(), 1);
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut store.open_blob_raw(&key).unwrap(), &mut raw).unwrap();
    assert_eq!(raw, bytes);
    let mut tar = Vec::new();
    store.export(&key, &mut tar, true).unwrap();
    store.verify_blob(&key).unwrap();
    assert!(tar.len() > bytes.len() / 2);
    let info = store.image_info(&key).unwrap().unwrap();
    assert_eq!(info.display_name(), "example.com/a:1.0");
    assert_eq!(info.tar_size, tar.len() as u64);
    assert!(store.tree_sizes().unwrap()[&key] > 0, "rendered at import");
}

#[test]
fn importing_again_refreshes_the_import_and_last_used_times() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = aci(&manifest("example.com/a", "1.0"), &[("etc/a", "a")]);
    let first = store
        .import(&mut Cursor::new(&bytes), &rendering())
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let second = store
        .import(&mut Cursor::new(&bytes), &rendering())
        .unwrap();
    assert!(second.import_time > first.import_time);
    assert_eq!(second.last_used, second.import_time);
    let stored = store.image_info(&first.image_key()).unwrap().unwrap();
    assert_eq!(stored, second);
}

/// `du --apparent-size` as rkt's `fileutil.DirSize` counts: every entry's st_size, each
/// multiply linked file once.
fn dir_size(path: &std::path::Path, seen: &mut std::collections::HashSet<u64>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    let mut total = 0;
    if meta.is_dir() || meta.nlink() == 1 || seen.insert(meta.ino()) {
        total += meta.len();
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            total += dir_size(&entry.unwrap().path(), seen);
        }
    }
    total
}

#[test]
fn tree_sizes_count_the_whole_tree_directory_until_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let m = manifest("example.com/a", "1.0");
    let mut b = AciBuilder::new(Vec::new(), Compression::Gzip, &m).unwrap();
    b.add_dir("etc", 0o755).unwrap();
    b.add_file("etc/data", 0o644, &[7u8; 5000]).unwrap();
    b.add_symlink("etc/link", "data").unwrap();
    let bytes = b.finish().unwrap();
    let info = store
        .import(&mut Cursor::new(&bytes), &rendering())
        .unwrap();
    let key = info.image_key();
    let tree = store
        .tree(&TreeId::for_images(std::slice::from_ref(&key)))
        .unwrap()
        .unwrap();
    let on_disk = dir_size(&tree.dir, &mut Default::default());
    assert_eq!(tree.size, on_disk);
    let sizes = store.tree_sizes().unwrap();
    assert_eq!(sizes[&key], on_disk);
    assert_eq!(info.listed_size(&sizes), info.tar_size + on_disk);
    // A tree rendered for another image counts for that image, not for its dependency.
    let mut top = manifest("example.com/top", "1.0");
    top.dependencies.push(Dependency {
        image_name: "example.com/a".into(),
        image_id: Some(key.to_string()),
        labels: Vec::new(),
        size: None,
    });
    let top_key = import(&store, &aci(&top, &[]), &rendering());
    let top_tree = store.render_tree(&top_key, TreeCheck::Full).unwrap();
    let sizes = store.tree_sizes().unwrap();
    assert_eq!(sizes[&key], on_disk);
    assert_eq!(
        sizes[&top_key],
        dir_size(&top_tree.dir, &mut Default::default())
    );
    store.gc_trees(&Default::default()).unwrap();
    let sizes = store.tree_sizes().unwrap();
    assert!(sizes.is_empty(), "{sizes:?}");
    assert_eq!(info.listed_size(&sizes), info.tar_size);
}

#[test]
fn ids_resolve_by_unambiguous_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = import(
        &store,
        &aci(&manifest("example.com/a", "1"), &[]),
        &ImportOptions::default(),
    );
    assert_eq!(store.resolve_id(&a.as_str()[..9]).unwrap(), a);
    assert_eq!(store.resolve_id(a.short()).unwrap(), a);
    assert!(matches!(
        store.resolve_id("sha512-zz"),
        Err(StoreError::BadImageId(_))
    ));
    for short in ["sha512-", "sha512-a"] {
        let err = store.resolve_id(short).unwrap_err();
        assert!(matches!(err, StoreError::IdTooShort(_)), "{err}");
        assert!(err.to_string().starts_with("image ID too short"), "{err}");
    }
    let mut other = String::from("sha512-");
    other.push(if a.as_str().as_bytes()[7] == b'0' {
        '1'
    } else {
        '0'
    });
    other.push('0');
    assert!(matches!(
        store.resolve_id(&other),
        Err(StoreError::ImageNotFound(_))
    ));
    // With many images, a 2-digit prefix is eventually ambiguous.
    for v in 0..40 {
        import(
            &store,
            &aci(&manifest("example.com/many", &v.to_string()), &[]),
            &ImportOptions::default(),
        );
    }
    let ambiguous = (0..256)
        .map(|b| format!("sha512-{b:02x}"))
        .any(|p| matches!(store.resolve_id(&p), Err(StoreError::AmbiguousImage { .. })));
    assert!(ambiguous);
}

#[test]
fn names_prefer_latest_without_version_then_newest_import() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let old = import(
        &store,
        &aci(&manifest("example.com/app", "1.0"), &[]),
        &ImportOptions::default(),
    );
    let latest = import(
        &store,
        &aci(&manifest("example.com/app", "2.0"), &[]),
        &ImportOptions {
            latest: true,
            ..ImportOptions::default()
        },
    );
    let newest = import(
        &store,
        &aci(&manifest("example.com/app", "3.0"), &[]),
        &ImportOptions::default(),
    );
    let find = |labels: &[Label]| {
        store
            .find_by_name("example.com/app", labels)
            .unwrap()
            .map(|i| i.image_key())
    };
    assert_eq!(find(&[]), Some(latest.clone()));
    let v1 = [Label {
        name: "version".into(),
        value: "1.0".into(),
    }];
    assert_eq!(find(&v1), Some(old));
    assert_ne!(find(&[]), Some(newest));
    let missing = [Label {
        name: "version".into(),
        value: "9".into(),
    }];
    assert_eq!(find(&missing), None);
    assert!(store
        .find_by_name("example.com/other", &[])
        .unwrap()
        .is_none());
}

#[test]
fn dependencies_render_first_and_the_image_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let base = import(
        &store,
        &aci(
            &manifest("example.com/base", "1"),
            &[("etc/os", "base"), ("etc/shared", "base")],
        ),
        &rendering(),
    );
    let mut m = manifest("example.com/app", "1");
    m.dependencies = vec![Dependency {
        image_name: "example.com/base".into(),
        image_id: None,
        labels: vec![Label {
            name: "version".into(),
            value: "1".into(),
        }],
        size: None,
    }];
    let app = import(&store, &aci(&m, &[("etc/shared", "app")]), &rendering());
    assert_eq!(
        store.dependency_order(&app).unwrap(),
        vec![base.clone(), app.clone()]
    );
    let tree = store.render_tree(&app, TreeCheck::Full).unwrap();
    let read = |p: &str| std::fs::read_to_string(tree.rootfs().join(p)).unwrap();
    assert_eq!(read("etc/os"), "base");
    assert_eq!(read("etc/shared"), "app");
    assert_eq!(tree.id, TreeId::for_images(&[base.clone(), app.clone()]));
    // Verified in place: each file against the layer that wrote it last.
    assert!(store.verify_tree_contents(&app).unwrap());
    let shared = tree.rootfs().join("etc/shared");
    let mtime = std::fs::metadata(&shared).unwrap().modified().unwrap();
    std::fs::write(&shared, "bas").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&shared)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert!(!store.verify_tree_contents(&app).unwrap());
    assert_eq!(read("etc/shared"), "app");
    assert!(store.verify_tree_contents(&app).unwrap());
    // Reused, not rendered again.
    assert_eq!(
        store.render_tree(&app, TreeCheck::Quick).unwrap().dir,
        tree.dir
    );
    // A missing dependency is named.
    store.remove_image(&base).unwrap();
    store.remove_tree(&tree.id).unwrap();
    match store.render_tree(&app, TreeCheck::Quick) {
        Err(StoreError::MissingDependency { dependency, .. }) => {
            assert_eq!(dependency, "example.com/base")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn changed_trees_are_detected_and_rendered_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let key = import(
        &store,
        &aci(
            &manifest("example.com/a", "1"),
            &[("etc/deep/file", "original")],
        ),
        &rendering(),
    );
    let tree = store.render_tree(&key, TreeCheck::Full).unwrap();
    store.check_tree(&tree.id, TreeCheck::Full).unwrap();
    std::fs::write(tree.rootfs().join("etc/deep/file"), "tampered!").unwrap();
    assert!(matches!(
        store.check_tree(&tree.id, TreeCheck::Full),
        Err(StoreError::CorruptTree(_))
    ));
    // The quick check only looks at the top level, which did not change...
    store.check_tree(&tree.id, TreeCheck::Quick).unwrap();
    // ...but catches damage there.
    std::fs::remove_dir_all(tree.rootfs().join("etc")).unwrap();
    assert!(matches!(
        store.check_tree(&tree.id, TreeCheck::Quick),
        Err(StoreError::CorruptTree(_))
    ));
    let again = store.render_tree(&key, TreeCheck::Quick).unwrap();
    assert_eq!(
        std::fs::read_to_string(again.rootfs().join("etc/deep/file")).unwrap(),
        "original"
    );
}

#[test]
fn content_verification_catches_what_metadata_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let key = import(
        &store,
        &aci(&manifest("example.com/a", "1"), &[("etc/f", "original")]),
        &rendering(),
    );
    assert!(store.verify_tree_contents(&key).unwrap());
    // Same size, same mtime: only the content differs.
    let tree = store.render_tree(&key, TreeCheck::None).unwrap();
    let path = tree.rootfs().join("etc/f");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "tampered").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    store.check_tree(&tree.id, TreeCheck::Full).unwrap();
    assert!(
        !store.verify_tree_contents(&key).unwrap(),
        "a changed file is found and replaced"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "original");
    assert!(store.verify_tree_contents(&key).unwrap());
}

#[test]
fn removal_and_tree_gc() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = import(
        &store,
        &aci(&manifest("example.com/a", "1"), &[]),
        &rendering(),
    );
    let b = import(
        &store,
        &aci(&manifest("example.com/b", "1"), &[]),
        &rendering(),
    );
    let keep = store.render_tree(&a, TreeCheck::None).unwrap().id;
    let removed = store
        .gc_trees(&[keep.clone()].into_iter().collect())
        .unwrap();
    assert_eq!(removed, vec![TreeId::for_images(std::slice::from_ref(&b))]);
    store.remove_image(&a).unwrap();
    assert!(store.image_info(&a).unwrap().is_none());
    assert!(matches!(
        store.remove_image(&a),
        Err(StoreError::ImageNotFound(_))
    ));
    assert_eq!(store.images().unwrap().len(), 1);
}

#[test]
fn stale_work_directories_are_cleaned_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // What a killed import leaves: an unlocked lock file and its directory.
    let tmp = store.dir().join("tmp");
    std::fs::create_dir(tmp.join("import-1-0-0")).unwrap();
    std::fs::write(tmp.join("import-1-0-0/blob"), "partial").unwrap();
    std::fs::write(tmp.join("import-1-0-0.lock"), "").unwrap();
    let live = crate::workdir::WorkDir::create(&store, "import").unwrap();
    store.clean_stale_work().unwrap();
    assert!(!tmp.join("import-1-0-0").exists());
    assert!(
        live.path().exists(),
        "a locked work directory belongs to a live process"
    );
    drop(live);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn corrupt_input_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = aci(&manifest("example.com/a", "1"), &[("etc/a", "a")]);
    let err = store.import(&mut Cursor::new(&bytes[..bytes.len() / 2]), &rendering());
    assert!(err.is_err());
    assert!(store.images().unwrap().is_empty());
    assert!(store.trees().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.dir().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn concurrent_imports_of_the_same_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = aci(&manifest("example.com/a", "1"), &[("etc/a", "a")]);
    let keys: Vec<ImageKey> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| import(&store, &bytes, &rendering())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(store.images().unwrap().len(), 1);
    assert_eq!(store.trees().unwrap().len(), 1);
}

fn lock_files(store: &Store) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.dir().join("locks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn lock_files_go_with_their_image_and_tree_unless_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = import(
        &store,
        &aci(&manifest("example.com/a", "1"), &[]),
        &rendering(),
    );
    let tree = TreeId::for_images(std::slice::from_ref(&a));
    assert_eq!(
        lock_files(&store),
        [format!("{tree}.lock"), format!("{a}.lock")]
    );
    store.remove_tree(&tree).unwrap();
    store.remove_image(&a).unwrap();
    assert!(lock_files(&store).is_empty(), "{:?}", lock_files(&store));

    // A lock someone holds stays, and is cleaned once it is free.
    let b = import(
        &store,
        &aci(&manifest("example.com/b", "1"), &[]),
        &ImportOptions::default(),
    );
    let held = crate::StoreLock::acquire_removable(&store.entry_lock_path(b.as_str())).unwrap();
    store.remove_image(&b).unwrap();
    store.clean_stale_locks().unwrap();
    assert_eq!(lock_files(&store), [format!("{b}.lock")]);
    drop(held);
    store.clean_stale_locks().unwrap();
    assert!(lock_files(&store).is_empty());
}

#[test]
fn a_lock_taken_on_a_deleted_lock_file_is_taken_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let path = store.entry_lock_path("x");
    let first = crate::StoreLock::acquire_removable(&path).unwrap();
    drop(first);
    crate::StoreLock::remove_unused(&path).unwrap();
    assert!(!path.exists());
    // Taking it again creates a fresh file, and holding it keeps removers away.
    let again = crate::StoreLock::acquire_removable(&path).unwrap();
    crate::StoreLock::remove_unused(&path).unwrap();
    assert!(path.exists());
    drop(again);
}

#[test]
fn work_directories_without_a_lock_file_are_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let tmp = store.dir().join("tmp");
    // What a killed `image rm` of an older build could leave: the renamed image, no lock.
    std::fs::create_dir_all(tmp.join("remove-9-0-0/image")).unwrap();
    std::fs::write(tmp.join("remove-9-0-0/image/blob"), "old").unwrap();
    let live = crate::workdir::WorkDir::create(&store, "render").unwrap();
    store.clean_stale_work().unwrap();
    assert!(!tmp.join("remove-9-0-0").exists());
    assert!(live.path().exists());
}

#[test]
fn a_full_disk_is_named_however_deeply_it_is_wrapped() {
    use std::io;
    let nospc = || io::Error::from_raw_os_error(28);
    let wrapped = io::Error::other(nospc());
    let aci = StoreError::from(aci::AciError::Read(wrapped));
    match aci.writing_in(std::path::Path::new("/data/cas/tmp/x")) {
        StoreError::DiskFull { path, .. } => {
            assert_eq!(path, std::path::Path::new("/data/cas/tmp/x"))
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = StoreError::io("write", std::path::Path::new("/d/cas/tmp/blob"), nospc())
        .in_store(std::path::Path::new("/d/cas"));
    assert_eq!(
        err.to_string(),
        "no space left on the device holding /d/cas: free some space there or choose another --dir"
    );
    // Anything else stays what it was.
    let other = StoreError::from(aci::AciError::Read(io::Error::from_raw_os_error(5)));
    assert!(matches!(
        other.writing_in(std::path::Path::new("/x")),
        StoreError::Aci(_)
    ));
}
