//! Behaviour that rkt 1.30 shows and its own tests check (tests/rkt_volume_test.go,
//! rkt_volume_nspawn_test.go, rkt_etc_hosts_test.go, rkt_supplementary_gids_test.go), run
//! against our binaries.
use std::os::unix::fs::PermissionsExt;

use rkt_tests::{require_root, ImageSpec, TestEnv};

/// A host directory for a test, inside its scratch space.
fn host_dir(env: &TestEnv, name: &str) -> String {
    let dir = env.work().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// rkt's default `/etc/hosts` (stage1's hosts-fallback) once the hostname is added.
fn default_hosts(hostname: &str) -> String {
    format!(
        "# This is the default rkt /etc/hosts\n\
         127.0.0.1 localhost localhost.domain localhost4 localhost4.localdomain4 {hostname}\n\
         \n\
         ::1 ip6-localhost ip6-loopback localhost6 localhost6.localdomain6\n\
         fe00::0 ip6-localnet\n\
         ff00::0 ip6-mcastprefix\n\
         ff02::1 ip6-allnodes\n\
         ff02::2 ip6-allrouters\n\
         ff02::3 ip6-allhosts\n"
    )
}

#[test]
fn relative_mount_targets_are_paths_inside_the_app() {
    if !require_root("relative_mount_targets_are_paths_inside_the_app") {
        return;
    }
    let env = TestEnv::new();
    let src = host_dir(&env, "dir1");
    std::fs::write(format!("{src}/file"), "host").unwrap();
    let volume = format!("dir1,kind=host,source={src}");
    let reader = |name: &str, read_only: bool| {
        let spec = ImageSpec::shell(
            name,
            "cat /dir1/file; echo; echo 2 > /dir1/file && echo wrote",
        )
        .file("dir1/file", 0o644, b"dir1")
        .mount_point("dir1", "/dir1", read_only);
        env.image(&spec, &format!("{}.aci", name.replace('/', "-")))
    };
    // The image's read-only mount point still decides for --mount volume=dir1,target=dir1.
    let ro = env.run(&[
        "--volume",
        &volume,
        "--mount=volume=dir1,target=dir1",
        &reader("example.com/vol-ro", true),
    ]);
    assert_eq!(ro.code, 1, "{ro:?}");
    assert_eq!(ro.stdout, "host\n", "{ro:?}");
    assert!(ro.stderr.contains("Read-only file system"), "{ro:?}");
    assert!(
        !ro.stderr.contains("implicitly creating"),
        "dir1 fulfils the mount point /dir1: {ro:?}"
    );
    let rw = env.run(&[
        "--volume",
        &volume,
        "--mount=volume=dir1,target=dir1",
        &reader("example.com/vol-rw", false),
    ]);
    assert_eq!(rw.ok(), "host\nwrote\n");
    assert_eq!(read(&format!("{src}/file")), "2\n", "the host file changed");

    // Without any mount point in the image, and in a prepared pod: the manifest keeps the
    // target as given.
    let plain = ImageSpec::shell("example.com/plain", "cat /dir1/file; stat -c %A /a/b");
    let uuid = env
        .rkt(&[
            "--insecure-options=image",
            "prepare",
            "--volume",
            &volume,
            &env.image(&plain, "plain.aci"),
            "--mount=volume=dir1,target=dir1",
            "--mount=volume=dir1,target=a/b/c",
        ])
        .ok()
        .trim()
        .to_string();
    let manifest = env.rkt(&["cat-manifest", "--pretty-print=false", &uuid]);
    assert!(
        manifest.ok().contains(
            r#""mounts":[{"volume":"dir1","path":"dir1"},{"volume":"dir1","path":"a/b/c"}]"#
        ),
        "{manifest:?}"
    );
    let out = env.rkt(&["run-prepared", &uuid]);
    assert_eq!(out.ok(), "2\ndrwxr-xr-x\n", "created parents get mode 0755");
}

#[test]
fn a_mount_point_given_relative_gets_its_volume() {
    if !require_root("a_mount_point_given_relative_gets_its_volume") {
        return;
    }
    let env = TestEnv::new();
    let src = host_dir(&env, "data");
    std::fs::write(format!("{src}/in"), "from-host\n").unwrap();
    let spec = ImageSpec::shell("example.com/data", "cat /var/data/in").mount_point(
        "data",
        "/var/data",
        false,
    );
    let out = env.run(&[
        "--volume",
        &format!("other,kind=host,source={src}"),
        &env.image(&spec, "data.aci"),
        "--mount=volume=other,target=var/data",
    ]);
    assert_eq!(out.ok(), "from-host\n");
    assert!(
        !out.stderr.contains("implicitly creating"),
        "var/data covers the mount point /var/data: {out:?}"
    );
}

#[test]
fn nested_volumes_mount_parents_first_whatever_the_order() {
    if !require_root("nested_volumes_mount_parents_first_whatever_the_order") {
        return;
    }
    let env = TestEnv::new();
    let outer = host_dir(&env, "outer");
    let inner = host_dir(&env, "inner");
    std::fs::write(format!("{outer}/top"), "outer\n").unwrap();
    let script = "cat /data/top; echo x > /data/sub/x && echo wrote-inner; \
                  echo y > /data/y 2>/dev/null || echo outer-ro";
    let img = env.image(&ImageSpec::shell("example.com/nested", script), "n.aci");
    // The deeper mount comes first on the command line; the outer volume is read-only, so
    // the inner target must be made in it before it turns read-only.
    let out = env.run(&[
        "--volume",
        &format!("b,kind=host,source={inner}"),
        "--volume",
        &format!("a,kind=host,source={outer},readOnly=true"),
        &img,
        "--mount=volume=b,target=/data/sub",
        "--mount=volume=a,target=/data",
    ]);
    assert_eq!(out.ok(), "outer\nwrote-inner\nouter-ro\n");
    assert_eq!(read(&format!("{inner}/x")), "x\n");
    assert!(
        std::path::Path::new(&format!("{outer}/sub")).is_dir(),
        "the inner mount point is made in the outer volume, as rkt did"
    );

    // Image mount points in the opposite order, fulfilled by implicit empty volumes.
    let spec = ImageSpec::shell(
        "example.com/nested-mp",
        "echo z > /data/sub/z && cat /data/sub/z && ls /data",
    )
    .mount_point("sub", "/data/sub", false)
    .mount_point("data", "/data", false);
    let out = env.run(&[&env.image(&spec, "mp.aci")]);
    assert_eq!(out.ok(), "z\nsub\n");
}

#[test]
fn a_volume_on_sys_replaces_sysfs() {
    if !require_root("a_volume_on_sys_replaces_sysfs") {
        return;
    }
    let env = TestEnv::new();
    let stat = "if [ -c /sys/class ]; then echo device; else ls -d /sys/class; fi";
    let run = |name: &str, mount_path: Option<&str>, volume: Option<&str>| {
        let mut spec = ImageSpec::shell(name, stat);
        if let Some(path) = mount_path {
            spec = spec.mount_point("sysdir", path, false);
        }
        let img = env.image(&spec, &format!("{}.aci", name.replace('/', "-")));
        let mut args: Vec<String> = Vec::new();
        if let Some(v) = volume {
            args.push(format!("--volume=sysdir,{v}"));
        }
        args.push(img);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run(&args)
    };
    assert_eq!(run("example.com/sys-none", None, None).ok(), "/sys/class\n");
    let empty = run("example.com/sys-empty", Some("/sys"), None);
    assert_eq!(empty.code, 1, "{empty:?}");
    assert!(
        empty
            .stderr
            .contains("/sys/class: No such file or directory"),
        "{empty:?}"
    );
    let host = run(
        "example.com/sys-host",
        Some("/sys"),
        Some("kind=host,source=/sys,readOnly=false"),
    );
    assert_eq!(host.ok(), "/sys/class\n");
    let class = run(
        "example.com/sys-class",
        Some("/sys/class"),
        Some("kind=host,source=/dev/null,readOnly=false"),
    );
    assert_eq!(class.ok(), "device\n");
}

#[test]
fn exec_of_a_command_a_volume_provides() {
    if !require_root("exec_of_a_command_a_volume_provides") {
        return;
    }
    let env = TestEnv::new();
    let tools = host_dir(&env, "tools");
    let tool = format!("{tools}/tool");
    std::fs::write(&tool, "#!/bin/sh\necho from-volume \"$@\"\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let img = env.image(&ImageSpec::new("example.com/base", &["/bin/true"]), "b.aci");
    let volume = format!("tools,kind=host,source={tools}");
    let out = env.run(&[
        "--volume",
        &volume,
        &img,
        "--mount=volume=tools,target=/opt/tools",
        "--exec=/opt/tools/tool",
        "--",
        "arg",
    ]);
    assert_eq!(out.ok(), "from-volume arg\n");
    // A file volume on the exec path itself.
    let out = env.run(&[
        "--volume",
        &format!("tool,kind=host,source={tool}"),
        &img,
        "--mount=volume=tool,target=usr/local/bin/tool",
        "--exec=/usr/local/bin/tool",
    ]);
    assert_eq!(out.ok(), "from-volume\n");
    // Missing in the volume: the pod starts and the app fails to execute.
    let missing = env.run(&[
        "--volume",
        &volume,
        &img,
        "--mount=volume=tools,target=/opt/tools",
        "--exec=/opt/tools/missing",
    ]);
    assert_eq!(missing.code, 254, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("execve /opt/tools/missing: No such file or directory"),
        "{missing:?}"
    );
    assert!(
        !missing.stderr.contains("does not exist in the image"),
        "{missing:?}"
    );
    // Outside every volume the image is still checked before anything runs.
    let outside = env.run(&[
        "--volume",
        &volume,
        &img,
        "--mount=volume=tools,target=/opt/tools",
        "--exec=/opt/toolsx/tool",
    ]);
    assert_eq!(outside.code, 254, "{outside:?}");
    assert!(
        outside.stderr.contains("does not exist in the image"),
        "{outside:?}"
    );
}

#[test]
fn supplementary_groups_include_the_primary_group() {
    if !require_root("supplementary_groups_include_the_primary_group") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::new("example.com/id", &["/bin/id"]), "id.aci");
    let out = env.run(&[&img, "--group=100", "--supplementary-gids=1024,2048"]);
    assert_eq!(
        out.ok(),
        "uid=0(root) gid=100(users) groups=100(users),1024,2048\n"
    );
    let out = env.run(&[&img, "--group=100"]);
    assert_eq!(out.ok(), "uid=0(root) gid=100(users) groups=100(users)\n");
    // rkt_supplementary_gids_test.go: the image's own supplementaryGIDs.
    let mut spec = ImageSpec::new("example.com/groups", &["/bin/id", "-G"]);
    spec.app().supplementary_gids = vec![400, 500, 1200];
    let out = env.run(&[&env.image(&spec, "g.aci")]);
    assert_eq!(out.ok(), "0 400 500 1200\n");
}

#[test]
fn etc_hosts_as_rkt_writes_it() {
    if !require_root("etc_hosts_as_rkt_writes_it") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::new("example.com/hosts", &["/bin/cat", "/etc/hosts"]),
        "h.aci",
    );
    let out = env.run(&["--hostname=compat-host", &img]);
    assert_eq!(out.ok(), default_hosts("compat-host"));
    // The default hostname, rkt-<uuid>, on the 127.0.0.1 line.
    let uuid_file = env.work().join("uuid");
    let out = env.run(&[&format!("--uuid-file-save={}", uuid_file.display()), &img]);
    let uuid = read(&uuid_file.display().to_string());
    assert_eq!(out.ok(), default_hosts(&format!("rkt-{}", uuid.trim())));

    let out = env.run(&[
        "--hostname=compat-host",
        "--hosts-entry=128.66.0.99=host1",
        &img,
    ]);
    assert_eq!(
        out.ok(),
        format!(
            "{}\n\n# Added by rkt run --hosts-entry\n128.66.0.99 host1\n",
            default_hosts("compat-host")
        )
    );
    let host = read("/etc/hosts");
    let out = env.run(&["--hosts-entry=host", "--hosts-entry=host", &img]);
    assert_eq!(out.ok(), host, "repeating host is one host");
    let mixed = env.run(&["--hosts-entry=host", "--hosts-entry=10.0.0.1=a", &img]);
    assert_eq!(mixed.code, 254, "{mixed:?}");
    assert!(
        mixed
            .stderr
            .contains("cannot pass --hosts-entry=host with multiple hosts-entries"),
        "{mixed:?}"
    );
}

#[test]
fn generated_pod_manifests_write_lists_as_rkt_does() {
    if !require_root("generated_pod_manifests_write_lists_as_rkt_does") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(&ImageSpec::new("example.com/pm", &["/bin/true"]), "pm.aci");
    let prepare = |extra: &[&str]| {
        let mut args = vec!["--insecure-options=image", "prepare"];
        args.extend_from_slice(extra);
        args.push(&img);
        let uuid = env.rkt(&args).ok().trim().to_string();
        let out = env.rkt(&["cat-manifest", "--pretty-print=false", &uuid]);
        out.ok().trim_end().to_string()
    };
    let plain = prepare(&[]);
    assert!(
        plain.ends_with(
            r#""volumes":null,"isolators":null,"annotations":[{"name":"coreos.com/rkt/stage1/mutable","value":"false"}],"ports":[]}"#
        ),
        "{plain}"
    );
    let with_volume = prepare(&["--volume=v,kind=empty"]);
    assert!(
        with_volume.contains(
            r#""volumes":[{"name":"v","kind":"empty","mode":"0755","uid":0,"gid":0}],"isolators":null,"#
        ),
        "{with_volume}"
    );

    // A pod manifest of the operator's is written back as it was given: null stays null.
    let id = env.fetch(&img);
    let pm = env.work().join("pod.json");
    std::fs::write(
        &pm,
        format!(
            r#"{{"acVersion":"1.30.0","acKind":"PodManifest","apps":[{{"name":"pm","image":{{"id":"{id}"}}}}],"ports":null}}"#
        ),
    )
    .unwrap();
    let uuid = env
        .rkt(&["prepare", &format!("--pod-manifest={}", pm.display())])
        .ok()
        .trim()
        .to_string();
    let written = env.rkt(&["cat-manifest", "--pretty-print=false", &uuid]);
    assert!(
        written
            .ok()
            .trim_end()
            .ends_with(r#""volumes":null,"isolators":null,"annotations":null,"ports":null}"#),
        "{written:?}"
    );
}
