//! Reliability at scale and under faults: concurrent gc, full disks, what killed commands leave
//! in the store, and which mounts pods hold on the host.
use std::path::{Path, PathBuf};

use rkt_tests::{require_root, ImageSpec, TestEnv};

/// Pods in a state directory of the data directory.
fn pods_in(env: &TestEnv, state: &str) -> usize {
    std::fs::read_dir(env.data_dir().join("pods").join(state))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn three_concurrent_gc_runs_all_succeed() {
    if !require_root("three_concurrent_gc_runs_all_succeed") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::shell("example.com/gc-many", "true"), "g.aci");
    env.fetch(&img);
    for _ in 0..30 {
        env.run(&[&img]).ok();
    }
    assert_eq!(pods_in(&env, "run"), 30);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            env.cmd(&["gc", "--grace-period=0s"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut collected = Vec::new();
    for child in runs {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "gc failed: {stderr}");
        assert!(!stderr.contains("error"), "{stderr}");
        collected.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("Garbage collecting pod"))
                .map(str::to_string),
        );
    }
    // Every pod was collected exactly once, by one of the three.
    collected.sort();
    let before = collected.len();
    collected.dedup();
    assert_eq!(before, 30, "{collected:?}");
    assert_eq!(collected.len(), 30);
    for state in ["run", "exited-garbage", "garbage"] {
        assert_eq!(pods_in(&env, state), 0, "pods left in {state}");
    }
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
}

/// A tmpfs of `size` (as mount(8) spells it) on a directory of its own, unmounted when
/// dropped, even after a failed assertion.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let dir = tempfile::Builder::new()
            .prefix("rkt-small-disk-")
            .tempdir()
            .unwrap();
        let target = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        let opts = std::ffi::CString::new(format!("size={size},mode=0700")).unwrap();
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left of the disk with a file.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0xa5u8; 64 * 1024];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                    break;
                }
            }
        }
        // A last few bytes fit in partial blocks.
        while f.write(&block[..512]).map(|n| n > 0).unwrap_or(false) {}
    }

    /// `rkt --dir=<disk>/data ARGS...`.
    fn rkt(&self, args: &[&str]) -> (i32, String, String) {
        let out = std::process::Command::new(rkt_tests::env::rkt_bin())
            .arg(format!("--dir={}", self.data().display()))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn data(&self) -> PathBuf {
        self.path().join("data")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; MNT_DETACH so that a failed test's leftovers
        // never keep the mount.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_fetch_that_fills_the_disk_says_so_and_leaves_nothing() {
    if !require_root("a_fetch_that_fills_the_disk_says_so_and_leaves_nothing") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::shell("example.com/big", "true"), "big.aci");
    // Room for the store's directories, not for the image and its rendered tree.
    let disk = SmallDisk::new("1m");
    let (code, _, stderr) = disk.rkt(&["--insecure-options=image", "fetch", &img]);
    assert_eq!(code, 254, "{stderr}");
    let cas = disk.data().join("cas");
    assert!(
        stderr.contains(&format!(
            "no space left on the device holding {}",
            cas.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("invalid image"), "{stderr}");
    assert!(!stderr.contains("corrupt"), "{stderr}");
    for sub in ["tmp", "image", "tree"] {
        assert!(entries(&cas.join(sub)).is_empty(), "cas/{sub} not empty");
    }
    let (code, list, _) = disk.rkt(&["image", "list", "--no-legend"]);
    assert_eq!((code, list.trim()), (0, ""));
}

#[test]
fn image_verify_on_a_full_disk_checks_in_place() {
    if !require_root("image_verify_on_a_full_disk_checks_in_place") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::shell("example.com/verify", "true"), "v.aci");
    let disk = SmallDisk::new("16m");
    let (code, id, stderr) = disk.rkt(&["--insecure-options=image", "fetch", &img]);
    assert_eq!(code, 0, "{stderr}");
    let id = id.trim().to_string();
    disk.fill();
    let (code, stdout, stderr) = disk.rkt(&["image", "verify", &id]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("successfully verified checksum for image"),
        "{stdout}"
    );
    // A changed file (same size and time) is found; repairing it needs room, and the lack
    // of room is what is reported.
    let tree = disk.data().join("cas/tree");
    let tree = tree.join(&entries(&tree)[0]).join("rootfs/etc/group");
    let mtime = std::fs::metadata(&tree).unwrap().modified().unwrap();
    let mut content = std::fs::read(&tree).unwrap();
    content[0] ^= 0x20;
    std::fs::write(&tree, &content).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tree)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (code, stdout, stderr) = disk.rkt(&["image", "verify", &id]);
    assert_eq!(code, 254, "{stdout}{stderr}");
    assert!(stderr.contains("no space left on the device"), "{stderr}");
    assert!(!stderr.contains("invalid image"), "{stderr}");
    // With room again, the tree is repaired.
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    let (code, stdout, stderr) = disk.rkt(&["image", "verify", &id]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("rebuilt"), "{stdout}");
    assert_ne!(std::fs::read(&tree).unwrap(), content);
    assert!(entries(&disk.data().join("cas/tmp")).is_empty());
}

#[test]
fn gc_removes_what_a_killed_fetch_left() {
    if !require_root("gc_removes_what_a_killed_fetch_left") {
        return;
    }
    use std::io::Write;
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::shell("example.com/killed", "true"), "k.aci");
    let bytes = std::fs::read(&img).unwrap();
    // The fetch reads from a fifo that is fed half the image, then never more.
    let fifo = env.work().join("slow.aci");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut fetch = env
        .cmd(&["--insecure-options=image", "fetch", fifo.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut feed = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    feed.write_all(&bytes[..bytes.len() / 2]).unwrap();
    let tmp = env.data_dir().join("cas/tmp");
    let blob_written = || {
        entries(&tmp).iter().any(|e| {
            std::fs::metadata(tmp.join(e).join("image/blob"))
                .map(|m| m.len() > 0)
                .unwrap_or(false)
        })
    };
    assert!(TestEnv::wait_for(
        std::time::Duration::from_secs(20),
        blob_written
    ));
    fetch.kill().unwrap();
    fetch.wait().unwrap();
    drop(feed);
    assert!(!entries(&tmp).is_empty());
    env.rkt(&["gc"]).ok();
    assert!(entries(&tmp).is_empty(), "{:?}", entries(&tmp));
}

#[test]
fn a_pod_that_fills_its_disk_still_records_its_exit_status() {
    if !require_root("a_pod_that_fills_its_disk_still_records_its_exit_status") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell(
            "example.com/filler",
            "dd if=/dev/zero of=/fill bs=64k 2>/dev/null; exit 3",
        ),
        "f.aci",
    );
    let disk = SmallDisk::new("24m");
    let uuid_file = env.work().join("uuid");
    let (code, _, stderr) = disk.rkt(&[
        "--insecure-options=image",
        "run",
        &format!("--uuid-file-save={}", uuid_file.display()),
        &img,
    ]);
    assert_eq!(code, 3, "{stderr}");
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    let (code, status, stderr) = disk.rkt(&["status", &uuid]);
    assert_eq!(code, 0, "{stderr}");
    assert!(status.lines().any(|l| l == "app-filler=3"), "{status}");
    let (code, _, stderr) = disk.rkt(&["gc", "--grace-period=0s"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn pods_hold_no_host_mount_and_exited_pods_still_export() {
    if !require_root("pods_hold_no_host_mount_and_exited_pods_still_export") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell(
            "example.com/exported",
            "echo made-in-pod > /result; rm /etc/group; sleep 2",
        ),
        "e.aci",
    );
    let uuid_file = env.work().join("uuid");
    let mut child = env
        .cmd(&[
            "--insecure-options=image",
            "run",
            &format!("--uuid-file-save={}", uuid_file.display()),
            &img,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let uuid = TestEnv::wait_uuid(&uuid_file);
    let ready = env.rkt(&["status", "--wait-ready=20s", &uuid]);
    assert_eq!(ready.code, 0, "{ready:?}");
    // Running: the overlays are in the pod's mount namespace, not the host's.
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    assert!(child.wait().unwrap().success());
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    let status = env.rkt(&["status", &uuid]);
    assert!(status.ok().contains("app-exported=0"), "{status:?}");

    // Export mounts what it needs in a namespace of its own, and leaves nothing mounted.
    let out = env.work().join("exported.aci");
    env.rkt(&["export", &uuid, out.to_str().unwrap()]).ok();
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    let run = env.run(&[
        out.to_str().unwrap(),
        "--exec",
        "/bin/sh",
        "--",
        "-c",
        "cat /result; test -e /etc/group && echo group still there; test -e /etc/passwd && echo passwd kept",
    ]);
    assert_eq!(run.ok(), "made-in-pod\npasswd kept\n");
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert!(env.mounts().is_empty());
}
