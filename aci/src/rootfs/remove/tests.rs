use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::process::{setrlimit, Resource, Rlimit};

use super::remove_tree;

/// A directory outside the tree whose content must survive every removal.
fn outside(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("outside");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("precious"), "keep").unwrap();
    out
}

#[test]
fn removes_files_links_and_special_files_without_following_links() {
    let t = tempfile::tempdir().unwrap();
    let out = outside(t.path());
    let tree = t.path().join("tree");
    std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
    std::fs::write(tree.join("a/b/c/file"), "x").unwrap();
    std::fs::write(tree.join("top-file"), "x").unwrap();
    symlink(&out, tree.join("link-to-outside")).unwrap();
    symlink(&out, tree.join("a/b/link-to-outside")).unwrap();
    symlink(out.join("precious"), tree.join("a/file-link")).unwrap();
    rfs::mknodat(
        rfs::CWD,
        tree.join("a/fifo"),
        rfs::FileType::Fifo,
        Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();

    remove_tree(&tree).unwrap();
    assert!(!tree.exists());
    assert_eq!(
        std::fs::read_to_string(out.join("precious")).unwrap(),
        "keep"
    );

    // A symlink at the path itself is removed, its target kept.
    let link = t.path().join("link");
    symlink(&out, &link).unwrap();
    remove_tree(&link).unwrap();
    assert!(link.symlink_metadata().is_err());
    assert!(out.join("precious").exists());

    // Missing paths (and missing parents) are fine; a plain file is removed.
    remove_tree(&t.path().join("missing")).unwrap();
    remove_tree(&t.path().join("missing/below")).unwrap();
    let file = t.path().join("file");
    std::fs::write(&file, "x").unwrap();
    remove_tree(&file).unwrap();
    assert!(!file.exists());
    assert!(remove_tree(Path::new("/")).is_err());
}

#[test]
fn wide_and_moderately_deep_trees_go_entirely() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    // Two branches deeper than the descriptor budget, with files at every level, so that
    // subtrees are moved to the top and removed from there.
    for branch in ["x", "y"] {
        let mut p = tree.join(branch);
        for level in 0..(3 * super::MAX_OPEN_LEVELS + 5) {
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join(format!("f{level}")), "x").unwrap();
            std::fs::create_dir(p.join("empty")).unwrap();
            p = p.join("d");
        }
    }
    for i in 0..200 {
        std::fs::write(tree.join(format!("wide-{i}")), "x").unwrap();
    }
    remove_tree(&tree).unwrap();
    assert!(!tree.exists());
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
}

const DEPTH: usize = 200_000;
const CHILD_ENV: &str = "RKT_TEST_REMOVE_TREE_CHILD";
const FD_LIMIT: u64 = 64;

/// Builds a chain `d/d/d/...` `DEPTH` levels deep (far past PATH_MAX, hence relative to
/// descriptors, closing each as it goes) with a file at the bottom.
fn build_deep_chain(top: &Path) {
    std::fs::create_dir(top).unwrap();
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut cur = rfs::open(top, flags, Mode::empty()).unwrap();
    for _ in 0..DEPTH {
        rfs::mkdirat(&cur, "d", Mode::from_raw_mode(0o755)).unwrap();
        cur = rfs::openat(&cur, "d", flags, Mode::empty()).unwrap();
    }
    let f = rfs::openat(
        &cur,
        "bottom",
        OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::io::write(&f, b"deep").unwrap();
}

/// A scratch directory on tmpfs when there is one: the descriptor budget does not depend on
/// the filesystem, and removing 200,000 directories from a disk mounted with `discard` takes
/// minutes (GNU `rm -rf` is as slow there).
fn fast_tempdir() -> tempfile::TempDir {
    match tempfile::tempdir_in("/dev/shm") {
        Ok(t) => t,
        Err(_) => tempfile::tempdir().unwrap(),
    }
}

#[test]
fn a_200000_level_tree_is_removed_with_64_descriptors() {
    let t = fast_tempdir();
    let top = t.path().join("deep");
    build_deep_chain(&top);
    // The removal runs in a child whose RLIMIT_NOFILE is 64: one descriptor per level (as
    // std::fs::remove_dir_all uses) would fail there with "Too many open files".
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "rootfs::remove::tests::child_removes_under_a_low_descriptor_limit",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &top)
        .status()
        .unwrap();
    assert!(status.success(), "removal in the child failed: {status}");
    assert!(!top.exists(), "the deep tree is still there");
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
}

/// The child half of the test above, run by it in a separate process.
#[test]
#[ignore = "run by a_200000_level_tree_is_removed_with_64_descriptors in a child process"]
fn child_removes_under_a_low_descriptor_limit() {
    let top = std::env::var_os(CHILD_ENV).expect("run by the parent test only");
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(FD_LIMIT),
            maximum: Some(FD_LIMIT),
        },
    )
    .unwrap();
    remove_tree(Path::new(&top)).unwrap();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    assert!(open < FD_LIMIT, "{open} descriptors still open");
}
