//! Volumes and mounts: every example of the seed's "Mount Volumes into a Pod" section.
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use rkt_tests::{require_root, ImageSpec, TestEnv};

/// A host directory for a test, inside its scratch space.
fn host_dir(env: &TestEnv, name: &str) -> String {
    let dir = env.work().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

fn pods_running(env: &TestEnv) -> usize {
    std::fs::read_dir(env.data_dir().join("pods/run"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Unmounts a test's helper mount even if the test fails.
struct HostMount(String);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn seed_host_and_empty_volumes_for_a_mount_point() {
    if !require_root("seed_host_and_empty_volumes_for_a_mount_point") {
        return;
    }
    let env = TestEnv::new();
    let app1 = ImageSpec::shell(
        "example.com/app1",
        "cat /var/data/in; echo from-pod > /var/data/out",
    )
    .mount_point("data", "/var/data", false);
    env.fetch(&env.image(&app1, "app1.aci"));
    let srv = host_dir(&env, "srv-data");
    std::fs::write(format!("{srv}/in"), "from-host\n").unwrap();
    // rkt run --volume data,kind=host,source=/srv/data,readOnly=false example.com/app1
    let out = env.rkt(&[
        "run",
        "--volume",
        &format!("data,kind=host,source={srv},readOnly=false"),
        "example.com/app1",
    ]);
    assert_eq!(out.ok(), "from-host\n");
    assert_eq!(
        std::fs::read_to_string(format!("{srv}/out")).unwrap(),
        "from-pod\n"
    );

    // rkt run --volume data,kind=empty,readOnly=false example.com/app1
    let empty = ImageSpec::shell(
        "example.com/app1",
        "ls -A /var/data; echo x > /var/data/f && echo wrote",
    )
    .label("version", "2.0.0")
    .mount_point("data", "/var/data", false);
    let out = env.run(&[
        "--volume",
        "data,kind=empty,readOnly=false",
        &env.image(&empty, "empty.aci"),
    ]);
    assert_eq!(out.ok(), "wrote\n", "an empty volume starts empty");
}

#[test]
fn seed_empty_volume_mode_uid_gid_and_sharing_between_apps() {
    if !require_root("seed_empty_volume_mode_uid_gid_and_sharing_between_apps") {
        return;
    }
    let env = TestEnv::new();
    let writer = ImageSpec::shell(
        "example.com/writer",
        "stat -c '%a %u %g' /var/data; echo shared > /var/data/msg",
    )
    .mount_point("data", "/var/data", false);
    let reader = ImageSpec::shell(
        "example.com/reader",
        "i=0; while [ ! -s /shared/msg ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cat /shared/msg",
    )
    .mount_point("data", "/shared", false);
    let uuid_file = env.work().join("uuid");
    // rkt run --volume data,kind=empty,mode=0700,uid=0,gid=0 (here with a non-root owner)
    let out = env.run(&[
        &format!("--uuid-file-save={}", uuid_file.display()),
        "--volume",
        "data,kind=empty,mode=0700,uid=1000,gid=100",
        &env.image(&writer, "w.aci"),
        &env.image(&reader, "r.aci"),
    ]);
    let mut lines: Vec<&str> = out.ok().lines().collect();
    lines.sort();
    assert_eq!(lines, ["700 1000 100", "shared"]);
    // The backing directory lives with the pod and goes away with it.
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    let backing = env
        .data_dir()
        .join("pods/run")
        .join(&uuid)
        .join("sharedVolumes/data");
    let meta = std::fs::metadata(&backing).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o700, 1000, 100)
    );
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    assert!(!backing.exists());
}

#[test]
fn seed_mount_without_mount_points_per_app_and_pod_wide() {
    if !require_root("seed_mount_without_mount_points_per_app_and_pod_wide") {
        return;
    }
    let env = TestEnv::new();
    let logs = host_dir(&env, "srv-logs");
    let app1 = ImageSpec::shell(
        "example.com/app1",
        "echo one > /var/log/app1.log; ls /opt/log 2>/dev/null; true",
    );
    let app2 = ImageSpec::shell(
        "example.com/app2",
        "i=0; while [ ! -s /opt/log/app1.log ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cat /opt/log/app1.log",
    );
    env.fetch(&env.image(&app1, "app1.aci"));
    env.fetch(&env.image(&app2, "app2.aci"));
    // --mount after an image applies to that app only.
    let out = env.rkt(&[
        "run",
        "--volume",
        &format!("logs,kind=host,source={logs}"),
        "example.com/app1",
        "--mount",
        "volume=logs,target=/var/log",
        "example.com/app2",
        "--mount",
        "volume=logs,target=/opt/log",
    ]);
    assert_eq!(out.ok(), "one\n");
    assert_eq!(
        std::fs::read_to_string(format!("{logs}/app1.log")).unwrap(),
        "one\n"
    );

    // --mount before the images applies to every app.
    let both = ImageSpec::shell(
        "example.com/both",
        "echo $AC_APP_NAME > /var/log/$AC_APP_NAME",
    );
    let second = ImageSpec::shell(
        "example.com/second",
        "echo $AC_APP_NAME > /var/log/$AC_APP_NAME",
    );
    env.run(&[
        "--volume",
        &format!("logs,kind=host,source={logs}"),
        "--mount",
        "volume=logs,target=/var/log",
        &env.image(&both, "both.aci"),
        &env.image(&second, "second.aci"),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(format!("{logs}/both")).unwrap(),
        "both\n"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{logs}/second")).unwrap(),
        "second\n"
    );

    // The seed's second example names a volume that does not exist: rkt refuses it.
    let typo = env.rkt(&[
        "run",
        "--volume",
        &format!("logs,kind=host,source={logs}"),
        "--mount",
        "volume=data,target=/var/log",
        "example.com/app1",
        "example.com/app2",
    ]);
    assert_eq!(typo.code, 254);
    assert_eq!(typo.stderr, "run: error parsing app image arguments: dangling mount point \"/var/log\": volume \"data\" not found\n");
}

#[test]
fn seed_mapreduce_example() {
    if !require_root("seed_mapreduce_example") {
        return;
    }
    let env = TestEnv::new();
    let work = host_dir(&env, "tenant1-work");
    std::fs::write(format!("{work}/input"), "records\n").unwrap();
    let worker = ImageSpec::shell(
        "example.com/reduce-worker",
        "cat /var/lib/work/input; echo reduced > /var/lib/work/output",
    )
    .mount_point("work", "/var/lib/work", false);
    let backup = ImageSpec::shell(
        "example.com/worker-backup",
        "cat /backup/input; if echo x > /backup/forbidden; then echo WRITABLE; else echo read-only; fi",
    )
    .mount_point("work", "/backup", true);
    env.fetch(&env.image(&worker, "worker.aci"));
    env.fetch(&env.image(&backup, "backup.aci"));
    let out = env.rkt(&[
        "run",
        &format!("--volume=work,kind=host,source={work}"),
        "example.com/reduce-worker",
        "example.com/worker-backup",
    ]);
    let mut lines: Vec<&str> = out.ok().lines().collect();
    lines.sort();
    assert_eq!(lines, ["read-only", "records", "records"]);
    assert!(out.stderr.contains("Read-only file system"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(format!("{work}/output")).unwrap(),
        "reduced\n"
    );
    assert!(!std::path::Path::new(&format!("{work}/forbidden")).exists());

    // Without mount points, --mount gives the same layout (both read-write).
    let plain_worker = ImageSpec::shell("example.com/plain-worker", "echo w > /var/lib/work/w");
    let plain_backup = ImageSpec::shell("example.com/plain-backup", "echo b > /backup/b");
    env.run(&[
        &format!("--volume=work,kind=host,source={work}"),
        &env.image(&plain_worker, "pw.aci"),
        "--mount",
        "volume=work,target=/var/lib/work",
        &env.image(&plain_backup, "pb.aci"),
        "--mount",
        "volume=work,target=/backup",
    ])
    .ok();
    assert!(std::path::Path::new(&format!("{work}/w")).exists());
    assert!(std::path::Path::new(&format!("{work}/b")).exists());
}

#[test]
fn read_only_volumes_refuse_writes_including_submounts() {
    if !require_root("read_only_volumes_refuse_writes_including_submounts") {
        return;
    }
    let env = TestEnv::new();
    let src = host_dir(&env, "ro-src");
    std::fs::create_dir_all(format!("{src}/sub")).unwrap();
    assert!(Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs", &format!("{src}/sub")])
        .status()
        .unwrap()
        .success());
    let _guard = HostMount(format!("{src}/sub"));
    let img = ImageSpec::shell(
        "example.com/ro",
        "touch /data/top 2>/dev/null && echo top-writable || echo top-ro; touch /data/sub/f 2>/dev/null && echo sub-writable || echo sub-ro",
    );
    let aci = env.image(&img, "ro.aci");
    let out = env.run(&[
        "--volume",
        &format!("data,kind=host,source={src},readOnly=true"),
        &aci,
        "--mount",
        "volume=data,target=/data",
    ]);
    assert_eq!(out.ok(), "top-ro\nsub-ro\n");
    let rw = env.run(&[
        "--volume",
        &format!("data,kind=host,source={src}"),
        &aci,
        "--mount",
        "volume=data,target=/data",
    ]);
    assert_eq!(rw.ok(), "top-writable\nsub-writable\n");
    // Non-recursive binds do not bring the submount along.
    let flat = ImageSpec::shell(
        "example.com/flat",
        "mountpoint -q /data/sub && echo sub-mounted || echo sub-absent",
    );
    let out = env.run(&[
        "--volume",
        &format!("data,kind=host,source={src},recursive=false"),
        &env.image(&flat, "flat.aci"),
        "--mount",
        "volume=data,target=/data",
    ]);
    assert_eq!(out.ok(), "sub-absent\n");
    // A read-only rootfs keeps writable volumes writable.
    let rootfs = ImageSpec::shell(
        "example.com/rorootfs",
        "touch /data/ok && echo volume-writable; touch /nope 2>/dev/null || echo rootfs-ro",
    );
    let out = env.run(&[
        "--volume",
        &format!("data,kind=host,source={src}"),
        &env.image(&rootfs, "rr.aci"),
        "--readonly-rootfs=true",
        "--mount",
        "volume=data,target=/data",
    ]);
    assert_eq!(out.ok(), "volume-writable\nrootfs-ro\n");
}

#[test]
fn implicit_volumes_file_volumes_and_symlinked_targets_stay_inside() {
    if !require_root("implicit_volumes_file_volumes_and_symlinked_targets_stay_inside") {
        return;
    }
    let env = TestEnv::new();
    let implicit = ImageSpec::shell("example.com/implicit", "echo ok > /cache/x && cat /cache/x")
        .mount_point("cache", "/cache", false);
    let out = env.run(&[&env.image(&implicit, "i.aci")]);
    assert_eq!(out.ok(), "ok\n");
    assert!(
        out.stderr.contains("no volume specified for mount point \"cache\", implicitly creating an \"empty\" volume"),
        "{out:?}"
    );

    // A file as a host volume: the target is created as a file.
    let file = env.work().join("config.txt");
    std::fs::write(&file, "setting=1\n").unwrap();
    let reader = ImageSpec::shell("example.com/file", "cat /etc/app.conf");
    let out = env.run(&[
        "--volume",
        &format!("conf,kind=host,source={}", file.display()),
        &env.image(&reader, "f.aci"),
        "--mount",
        "volume=conf,target=/etc/app.conf",
    ]);
    assert_eq!(out.ok(), "setting=1\n");

    // A symlink in the image pointing at a host path is followed inside the rootfs only.
    let outside = format!("/tmp/rkt-test-outside-{}", std::process::id());
    std::fs::create_dir_all(&outside).unwrap();
    let src = host_dir(&env, "linked-src");
    std::fs::write(format!("{src}/marker"), "volume content\n").unwrap();
    let linked = ImageSpec::shell("example.com/linked", "cat /data/marker; cat /dir2/marker")
        .symlink("data", &outside)
        .dir("dir1", 0o755)
        .dir("dir2", 0o755)
        .symlink("dir1/link_to_dir2", "/dir2");
    let uuid_file = env.work().join("uuid");
    let before = env.mounts().len();
    let out = env.run(&[
        &format!("--uuid-file-save={}", uuid_file.display()),
        "--volume",
        &format!("v,kind=host,source={src}"),
        &env.image(&linked, "l.aci"),
        "--mount",
        "volume=v,target=/data",
        "--mount",
        "volume=v,target=/dir1/link_to_dir2",
    ]);
    assert_eq!(out.ok(), "volume content\nvolume content\n");
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_mounts.contains(&outside),
        "a mount landed on the host path"
    );
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "the host directory was touched"
    );
    let _ = std::fs::remove_dir(&outside);
    let _ = before;
}

#[test]
fn gc_leaves_nothing_mounted() {
    if !require_root("gc_leaves_nothing_mounted") {
        return;
    }
    let env = TestEnv::new();
    let src = host_dir(&env, "gc-src");
    let img = ImageSpec::shell("example.com/gc", "true")
        .mount_point("data", "/data", false)
        .mount_point("scratch", "/scratch", false);
    env.run(&[
        "--volume",
        &format!("data,kind=host,source={src}"),
        &env.image(&img, "gc.aci"),
    ])
    .ok();
    env.run(&[
        "--no-overlay",
        "--volume",
        &format!("data,kind=host,source={src}"),
        &env.image(&img, "gc.aci"),
    ])
    .ok();
    // The overlays lived in the pods' own mount namespaces and went with them.
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    env.rkt(&["gc", "--grace-period=0s"]).ok();
    // Only what this test owns: nothing mounted under its directories, nor anything
    // elsewhere whose source lies in them. The rest of the machine may mount what it likes.
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    let ours = env.tmp.path().display().to_string();
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let left: Vec<&str> = after.lines().filter(|l| l.contains(&ours)).collect();
    assert!(left.is_empty(), "left mounted: {left:#?}");
}

#[test]
fn volume_mistakes_are_one_line_errors() {
    if !require_root("volume_mistakes_are_one_line_errors") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/v", "true").mount_point("data", "/data", false),
        "v.aci",
    );
    let missing = env.work().join("does-not-exist");
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "--volume".into(),
                "data,kind=host,source=/tmp,foo=bar".into(),
                img.clone(),
            ],
            254,
            "foo",
        ),
        (
            vec!["--volume".into(), "data,kind=host".into(), img.clone()],
            254,
            "data",
        ),
        (
            vec![
                "--volume".into(),
                format!("data,kind=host,source={}", missing.display()),
                img.clone(),
            ],
            1,
            "does not exist",
        ),
        (
            vec![
                "--volume".into(),
                "data,kind=empty,mode=0999".into(),
                img.clone(),
            ],
            254,
            "mode",
        ),
        (
            vec![
                "--volume".into(),
                "data,kind=empty".into(),
                "--volume".into(),
                "data,kind=empty".into(),
                img.clone(),
            ],
            254,
            "duplicate volume name \"data\"",
        ),
        (
            vec![
                "--volume".into(),
                "data,kind=empty".into(),
                img.clone(),
                "--mount".into(),
                "volume=nope,target=/x".into(),
            ],
            254,
            "volume \"nope\" not found",
        ),
        (
            vec!["--volume".into(), "data,kind=bogus".into(), img.clone()],
            254,
            "kind",
        ),
    ];
    for (args, code, expected) in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&refs);
        assert_eq!(out.code, code, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(expected),
            "{args:?}: expected {expected:?}: {out:?}"
        );
        assert_eq!(
            out.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {out:?}"
        );
        assert_eq!(pods_running(&env), 0, "{args:?}");
        assert!(env.mounts().is_empty(), "{args:?}");
    }
}

#[test]
fn status_reports_mounts_and_pod_manifests_use_the_same_machinery() {
    if !require_root("status_reports_mounts_and_pod_manifests_use_the_same_machinery") {
        return;
    }
    let env = TestEnv::new();
    let src = host_dir(&env, "pm-src");
    let id = env.fetch(&env.image(&ImageSpec::shell("example.com/pm", "true"), "pm.aci"));
    let manifest = format!(
        r#"{{"acVersion":"0.8.11","acKind":"PodManifest",
            "apps":[
              {{"name":"writer","image":{{"id":"{id}"}},"readOnlyRootFS":true,
                "app":{{"exec":["/bin/sh","-c","echo hi > /out/w; touch /x 2>/dev/null || echo rootfs-ro; echo tmp > /scratch/t && cat /scratch/t"],"user":"0","group":"0"}},
                "mounts":[{{"volume":"out","path":"/out"}},
                          {{"volume":"scratch","path":"/scratch","appVolume":{{"name":"scratch","kind":"empty","mode":"0755","uid":0,"gid":0}}}}]}}],
            "volumes":[{{"name":"out","kind":"host","source":"{src}","readOnly":false}}]}}"#
    );
    let path = env.work().join("pod.json");
    std::fs::write(&path, manifest).unwrap();
    let uuid_file = env.work().join("uuid");
    let out = env.rkt(&[
        "run",
        &format!("--uuid-file-save={}", uuid_file.display()),
        &format!("--pod-manifest={}", path.display()),
    ]);
    assert_eq!(out.ok(), "rootfs-ro\ntmp\n");
    assert_eq!(std::fs::read_to_string(format!("{src}/w")).unwrap(), "hi\n");
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(env.rkt(&["status", "--format=json", &uuid]).ok()).unwrap();
    let mounts = &json["apps"][0]["mounts"];
    assert_eq!(mounts[0]["name"], "out");
    assert_eq!(mounts[0]["container_path"], "/out");
    assert_eq!(mounts[0]["host_path"], src.as_str());
    assert_eq!(mounts[0]["read_only"], false);
    assert_eq!(mounts[1]["name"], "scratch");
}
