//! Hostile images and pods against the real binaries: sparse and decompression bombs, trees
//! too deep for one descriptor per level, symlinks planted for `rkt export` and in `--dir`.
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aci::archive::{read_aci, AciBuilder, Compression, ReadOptions};
use rkt_tests::hostile::{gnu_sparse, manifest, member, tar_of_members, RawEntry};
use rkt_tests::{require_root, ImageSpec, TestEnv};

const GIB: u64 = 1 << 30;

/// Names in `<data>/cas/<sub>`.
fn cas_entries(env: &TestEnv, sub: &str) -> Vec<String> {
    std::fs::read_dir(env.data_dir().join("cas").join(sub))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Nothing was stored: `rkt image list` is empty and no blob, tree or work file is left.
#[track_caller]
fn assert_store_empty(env: &TestEnv) {
    assert_eq!(env.rkt(&["image", "list", "--no-legend"]).ok(), "\n");
    for sub in ["image", "tree", "tmp"] {
        assert_eq!(
            cas_entries(env, sub),
            Vec::<String>::new(),
            "left in cas/{sub}"
        );
    }
}

/// Bytes allocated on disk below `dir` (symlinks not followed).
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.path().symlink_metadata().unwrap();
        total += m.blocks() * 512;
        if m.is_dir() {
            total += disk_usage(&e.path());
        }
    }
    total
}

/// A refused fetch: exit 254 and one line naming the flag and the limit.
#[track_caller]
fn assert_refused(run: &rkt_tests::env::Run, flag: &str, error: &str) {
    assert_eq!(run.code, 254, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(
        run.stderr
            .starts_with(&format!("fetch: refused by {flag}: ")),
        "{run:?}"
    );
    assert!(run.stderr.contains(error), "{run:?}");
}

/// The 11 KiB image from the report: one GNU sparse member claiming 1 GiB.
fn sparse_bomb(env: &TestEnv) -> String {
    let mut head = b"head".to_vec();
    head.resize(512, 0);
    let tar = tar_of_members(&[
        member(&RawEntry::file("manifest", &manifest("example.com/sparse"))),
        member(&RawEntry::dir("rootfs")),
        gnu_sparse("rootfs/bomb", GIB, &[(0, &head), (GIB - 4, b"tail")]),
    ]);
    assert!(tar.len() < 11 << 10, "the bomb is {} bytes", tar.len());
    let path = env.work().join("sparse.aci");
    std::fs::write(&path, tar).unwrap();
    path.display().to_string()
}

#[test]
fn a_sparse_bomb_is_stored_as_holes_and_counts_in_full() {
    if !require_root("a_sparse_bomb_is_stored_as_holes_and_counts_in_full") {
        return;
    }
    let env = TestEnv::new();
    let bomb = sparse_bomb(&env);
    env.fetch(&bomb);
    let trees = cas_entries(&env, "tree");
    assert_eq!(trees.len(), 1, "{trees:?}");
    let file = env
        .data_dir()
        .join("cas/tree")
        .join(&trees[0])
        .join("rootfs/bomb");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.len(), GIB, "apparent size");
    assert!(meta.blocks() * 512 <= 1 << 20, "{} blocks", meta.blocks());
    let mut content = Vec::new();
    File::open(&file)
        .unwrap()
        .take(8)
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(&content[..4], b"head");
    let used = disk_usage(&env.data_dir());
    assert!(used < 64 << 20, "the data directory uses {used} bytes");

    // It counts at its apparent size: a smaller size limit refuses it and stores nothing.
    let env = TestEnv::new();
    let bomb = sparse_bomb(&env);
    let refused = env.rkt(&[
        "--insecure-options=image",
        "--image-size-limit=512M",
        "fetch",
        &bomb,
    ]);
    assert_refused(
        &refused,
        "--image-size-limit=512M",
        "image exceeds the size limit: its files add up to more than 536870912 bytes (1073741824 bytes so far)",
    );
    assert_store_empty(&env);
}

/// A valid image holding one file of 128 MiB of zeros, compressed with `c` (a few hundred
/// KiB with gzip, much less with xz and zstd).
fn zero_bomb(env: &TestEnv, c: Compression) -> String {
    let tree = env.work().join(format!("zeros-{c}"));
    std::fs::create_dir(&tree).unwrap();
    // A sparse source file: the builder reads 128 MiB of zeros from it.
    File::create(tree.join("zeros"))
        .unwrap()
        .set_len(128 << 20)
        .unwrap();
    let path = env.work().join(format!("zeros-{c}.aci"));
    let out = File::create(&path).unwrap();
    let mut b = AciBuilder::with_manifest_bytes(out, c, &manifest("example.com/zeros")).unwrap();
    b.add_tree(&tree, "/").unwrap();
    b.finish().unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 512 << 10, "{c} bomb is {size} bytes");
    path.display().to_string()
}

#[test]
fn zero_bombs_are_refused_until_the_limit_is_raised() {
    if !require_root("zero_bombs_are_refused_until_the_limit_is_raised") {
        return;
    }
    for c in [Compression::Gzip, Compression::Xz, Compression::Zstd] {
        let env = TestEnv::new();
        let bomb = zero_bomb(&env, c);
        let refused = env.rkt(&["--insecure-options=image", "fetch", &bomb]);
        assert_refused(
            &refused,
            "--image-expansion-limit=256",
            "image exceeds the expansion limit: ",
        );
        assert_store_empty(&env);
        // A raised ratio still meets the size limit, given after the image this time.
        let refused = env.rkt(&[
            "--insecure-options=image",
            "--image-expansion-limit",
            "1000000",
            "fetch",
            &bomb,
            "--image-size-limit=64Mi",
        ]);
        assert_refused(
            &refused,
            "--image-size-limit=64M",
            "image exceeds the size limit: its files add up to more than 67108864 bytes (134217728 bytes so far)",
        );
        assert_store_empty(&env);
        // Raised after the subcommand, the same image gets in.
        let accepted = env.rkt(&[
            "fetch",
            "--image-expansion-limit=1000000",
            "--insecure-options=image",
            &bomb,
        ]);
        accepted.ok();
        let listed = env.rkt(&["image", "list", "--no-legend", "--fields=name"]);
        assert_eq!(listed.ok(), "example.com/zeros\n", "{c}");
        assert_eq!(cas_entries(&env, "tmp"), Vec::<String>::new());
    }
}

/// Builds a chain of 201,001 directories at `/tree` in the app's root. Busybox cannot `cd`
/// deeper than PATH_MAX (and `cd -P` calls getcwd, which gets quadratic), so each round makes
/// 200 levels and moves the tree built so far below them: one rename per round.
const DEEP_TREE: &str = "cd / && mkdir tree && p=d && i=1 && \
    while [ $i -lt 200 ]; do p=$p/d; i=$((i+1)); done && n=0 && \
    while [ $n -lt 1000 ]; do mkdir -p a/$p && mv tree a/$p/tree && mv a tree || exit 1; n=$((n+1)); done && \
    echo built";

/// Levels of the chain of single directories starting at `dir` (followed through
/// descriptors: the path is far longer than PATH_MAX).
fn chain_depth(dir: &Path) -> usize {
    let path = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid C string; the returned descriptor is closed below.
    let mut fd = unsafe { libc::open(path.as_ptr(), flags) };
    assert!(fd >= 0, "open {}", dir.display());
    let mut depth = 0;
    loop {
        let mut next = -1;
        for name in [c"tree", c"a", c"d"] {
            // SAFETY: `fd` is an open directory and `name` a valid C string.
            next = unsafe { libc::openat(fd, name.as_ptr(), flags) };
            if next >= 0 {
                break;
            }
        }
        // SAFETY: `fd` is open and not used after this.
        unsafe { libc::close(fd) };
        if next < 0 {
            return depth;
        }
        fd = next;
        depth += 1;
    }
}

/// Runs a pod whose app builds [`DEEP_TREE`] and returns its UUID, after checking the tree.
fn run_deep_pod(env: &TestEnv) -> String {
    let img = env.image(&ImageSpec::shell("example.com/deep", DEEP_TREE), "deep.aci");
    let uuid_file = env.work().join("deep.uuid");
    let run = env.run(&[&format!("--uuid-file-save={}", uuid_file.display()), &img]);
    assert_eq!(run.ok(), "built\n");
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    let overlay = env.data_dir().join("pods/run").join(&uuid).join("overlay");
    let tree = std::fs::read_dir(&overlay)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("upper/deep/tree"))
        .find(|p| p.exists())
        .expect("the app's upper directory holds the tree");
    let depth = chain_depth(&tree);
    assert!(depth >= 200_000, "the tree is only {depth} levels deep");
    uuid
}

/// No pod directory is left in any state and nothing stays mounted but the test's tmpfs.
#[track_caller]
fn assert_pod_gone(env: &TestEnv, uuid: &str) {
    for state in std::fs::read_dir(env.data_dir().join("pods")).unwrap() {
        let state = state.unwrap().path();
        let left: Vec<PathBuf> = std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            left.is_empty(),
            "{uuid}: left in {}: {left:?}",
            state.display()
        );
    }
    assert_eq!(env.mounts(), [env.tmp.path().display().to_string()]);
    assert_eq!(env.rkt(&["list", "--no-legend"]).ok(), "\n");
}

#[test]
fn gc_removes_a_pod_with_a_200000_level_tree() {
    if !require_root("gc_removes_a_pod_with_a_200000_level_tree") {
        return;
    }
    let env = TestEnv::on_tmpfs();
    let uuid = run_deep_pod(&env);
    let gc = env.rkt(&["gc", "--grace-period=0s"]);
    assert!(
        gc.ok()
            .contains(&format!("Garbage collecting pod \"{uuid}\"")),
        "{gc:?}"
    );
    assert!(!gc.stderr.contains("unable to remove"), "{gc:?}");
    assert_pod_gone(&env, &uuid);
}

#[test]
fn rm_removes_a_pod_with_a_200000_level_tree() {
    if !require_root("rm_removes_a_pod_with_a_200000_level_tree") {
        return;
    }
    let env = TestEnv::on_tmpfs();
    let uuid = run_deep_pod(&env);
    let rm = env.rkt(&["rm", &uuid]);
    assert_eq!(rm.ok(), format!("\"{uuid}\"\n"), "{rm:?}");
    assert_pod_gone(&env, &uuid);
}

/// Every regular file below `dir` (symlinks not followed) with its content.
fn regular_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.path().symlink_metadata().unwrap();
        if m.is_dir() {
            regular_files(&e.path(), out);
        } else if m.is_file() {
            out.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
}

#[test]
fn export_never_follows_symlinks_planted_in_the_pod() {
    if !require_root("export_never_follows_symlinks_planted_in_the_pod") {
        return;
    }
    let env = TestEnv::new();
    let secret = env.work().join("host-secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("marker"), "HOST-SECRET-MARKER").unwrap();
    // The app replaces its /data with a symlink to a host directory, and links to host files.
    let script = format!(
        "rm -rf /data && ln -s {s} /data && ln -s {s}/marker /leak && echo pod-own > /own && echo done",
        s = secret.display()
    );
    let spec = ImageSpec::shell("example.com/exporter", &script).file("data/file", 0o644, b"x");
    let img = env.image(&spec, "exporter.aci");
    let uuid_file = env.work().join("exporter.uuid");
    let run = env.run(&[&format!("--uuid-file-save={}", uuid_file.display()), &img]);
    assert_eq!(run.ok(), "done\n");
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();

    // The temporary name rkt used to write through, planted as a symlink to a host file.
    let victim = env.work().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    symlink(&victim, env.work().join("out.aci.tmp")).unwrap();
    let out = env.work().join("out.aci");
    env.rkt(&["export", &uuid, out.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(out.symlink_metadata().unwrap().is_file());

    // The image holds the pod's own files and its symlinks as symlinks, no host file.
    let extracted = env.work().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    let opts = ReadOptions {
        extract_to: Some(&extracted),
        ..ReadOptions::default()
    };
    read_aci(File::open(&out).unwrap(), &opts).unwrap();
    let root = extracted.join("rootfs");
    assert_eq!(std::fs::read_link(root.join("data")).unwrap(), secret);
    assert_eq!(
        std::fs::read_link(root.join("leak")).unwrap(),
        secret.join("marker")
    );
    assert_eq!(std::fs::read(root.join("own")).unwrap(), b"pod-own\n");
    let mut files = Vec::new();
    regular_files(&extracted, &mut files);
    assert!(files.len() > 3, "{files:?}");
    for (path, content) in &files {
        assert!(
            !content.windows(18).any(|w| w == b"HOST-SECRET-MARKER"),
            "host content exported as {}",
            path.display()
        );
    }

    // The app's root itself replaced by a symlink to the host directory (what a compromised
    // stage1 could do): the overlays were mounted in the pod's own mount namespace, so the
    // host sees an empty stage1 root, where the link is planted.
    let app_root = env
        .data_dir()
        .join("pods/run")
        .join(&uuid)
        .join("stage1/rootfs/opt/stage2/exporter/rootfs");
    std::fs::create_dir_all(app_root.parent().unwrap()).unwrap();
    symlink(&secret, &app_root).unwrap();
    let out2 = env.work().join("out2.aci");
    let refused = env.rkt(&["export", &uuid, out2.to_str().unwrap()]);
    assert_eq!(refused.code, 254, "{refused:?}");
    assert!(
        refused.stderr.contains(
            "the root filesystem of app exporter is reached through a symlink in the pod"
        ),
        "{refused:?}"
    );
    assert!(out2.symlink_metadata().is_err(), "an image was written");
    let leftovers: Vec<String> = std::fs::read_dir(env.work())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// A directory with mode 0755 for a planted symlink to point at.
fn link_target(env: &TestEnv, name: &str) -> PathBuf {
    let target = env.work().join(name);
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    target
}

#[track_caller]
fn assert_untouched(target: &Path) {
    let mode = std::fs::metadata(target).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755, "{} was chmodded", target.display());
    assert_eq!(std::fs::read_dir(target).unwrap().count(), 0);
}

#[test]
fn symlinks_planted_in_the_data_directory_are_refused() {
    if !require_root("symlinks_planted_in_the_data_directory_are_refused") {
        return;
    }
    let env = TestEnv::new();
    let target = link_target(&env, "pods-target");
    symlink(&target, env.data_dir().join("pods")).unwrap();
    let img = env.image(&ImageSpec::shell("example.com/planted", "true"), "p.aci");
    let expected = format!(
        "{}/pods is a symlink; rkt's data directory must contain real directories",
        env.data_dir().display()
    );
    for args in [
        vec!["--insecure-options=image", "prepare", img.as_str()],
        vec!["gc", "--grace-period=0s"],
    ] {
        let refused = env.rkt(&args);
        assert_eq!(refused.code, 254, "{refused:?}");
        assert!(refused.stderr.contains(&expected), "{refused:?}");
        assert_untouched(&target);
    }

    let env = TestEnv::new();
    let target = link_target(&env, "cas-target");
    symlink(&target, env.data_dir().join("cas")).unwrap();
    let img = env.image(&ImageSpec::shell("example.com/planted", "true"), "p.aci");
    let expected = format!(
        "{}/cas is a symlink; rkt's data directory must contain real directories",
        env.data_dir().display()
    );
    for args in [
        vec!["image", "list"],
        vec!["--insecure-options=image", "fetch", img.as_str()],
    ] {
        let refused = env.rkt(&args);
        assert_eq!(refused.code, 254, "{refused:?}");
        assert!(refused.stderr.contains(&expected), "{refused:?}");
        assert_untouched(&target);
    }
}
