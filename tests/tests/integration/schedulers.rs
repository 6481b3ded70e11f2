//! Nomad's rkt driver command lines, exactly as SCHEDULERS.md records them.
use std::process::Stdio;

use rkt_tests::{require_root, ImageSpec, TestEnv};

/// Nomad's alloc/local/secrets volume and mount pairs.
fn task_dirs(env: &TestEnv, alloc: &str, task: &str) -> Vec<String> {
    let mut args = Vec::new();
    for dir in ["alloc", "local", "secrets"] {
        let host = env.work().join(dir);
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("from-host"), dir).unwrap();
        let vol = format!("{alloc}-{task}-{dir}");
        args.push(format!(
            "--volume={vol},kind=host,source={}",
            host.display()
        ));
        args.push(format!("--mount=volume={vol},target=/{dir}"));
    }
    args
}

const ALLOC: &str = "c3f0d2bb-6a2b-4c8e-9b1d-2f6f0a7c9e11";

#[test]
fn nomad_09_prepare_run_prepared_status_rm() {
    if !require_root("nomad_09_prepare_run_prepared_status_rm") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/nomad-task", "true")
            .file("app/ports", 0o644, b"")
            .label("version", "0.9.0"),
        "task.aci",
    );
    let mut args: Vec<String> = [
        "--insecure-options=all",
        "--debug=false",
        "prepare",
        "--no-overlay=true",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(task_dirs(&env, ALLOC, "web"));
    args.extend([
        "--set-env=NOMAD_TASK_NAME=web".to_string(),
        "--set-env=GREETING=hello nomad".to_string(),
    ]);
    args.push(img);
    args.extend(
        [
            "--exec=sh",
            "--memory=134217728",
            "--cpu=100",
            "--user=0",
            "--group=0",
            "--",
            "-c",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.push("cat /alloc/from-host /local/from-host /secrets/from-host; echo $NOMAD_TASK_NAME $GREETING; echo $0".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let prepared = env.rkt(&refs);
    let uuid = prepared.ok().trim().to_string();
    assert_eq!(uuid.len(), 36, "{prepared:?}");

    let run = env.rkt(&[
        "--insecure-options=all",
        "--debug=false",
        "run-prepared",
        "--dns=host",
        "--net=host",
        &uuid,
    ]);
    assert_eq!(
        run.ok(),
        "alloclocalsecretsweb hello nomad\n/bin/sh\n",
        "{run:?}"
    );
    // Nomad always sends --memory and --cpu: stage1 enforces them, without a word.
    assert_eq!(run.stderr, "", "{run:?}");

    let status = env.rkt(&["status", "--format=json", &uuid]);
    let json: serde_json::Value = serde_json::from_str(status.ok()).unwrap();
    assert_eq!(json["name"], uuid.as_str());
    assert_eq!(json["state"], "exited");
    assert_eq!(json["app_names"][0], "nomad-task");
    assert_eq!(json["apps"][0]["exit_code"], 0);
    let mounts = json["apps"][0]["mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 3);
    assert_eq!(mounts[0]["container_path"], "/alloc");
    // Memory and CPU became isolators in the pod manifest.
    let manifest: serde_json::Value =
        serde_json::from_str(env.rkt(&["cat-manifest", &uuid]).ok()).unwrap();
    let isolators = manifest["apps"][0]["app"]["isolators"].as_array().unwrap();
    let names: Vec<&str> = isolators
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["resource/memory", "resource/cpu"]);

    let rm = env.rkt(&["rm", &uuid]);
    assert_eq!(rm.ok(), format!("\"{uuid}\"\n"));
    assert!(env.mounts().is_empty());
}

#[test]
fn nomad_05_and_06_run_forms_with_flags_after_the_image() {
    if !require_root("nomad_05_and_06_run_forms_with_flags_after_the_image") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/nomad-old", "true"),
        "old.aci",
    );
    // 0.5: global flags after the image.
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(task_dirs(&env, ALLOC, "old"));
    args.extend(
        [
            &img,
            "--insecure-options=all",
            "--debug=false",
            "--set-env=A=1",
            "--exec=/bin/sh",
            "--memory=256M",
            "--cpu=500m",
            "--dns=host",
            "--",
            "-c",
            "echo A=$A; ls /alloc",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(env.rkt(&refs).ok(), "A=1\nfrom-host\n");

    // 0.6: --uuid-file-save, then the UUID file is read verbatim and used with enter.
    let uuid_file = env.work().join("rkt.uuid");
    let mut args: Vec<String> = [
        "--insecure-options=all",
        "--debug=false",
        "run",
        "--no-overlay=true",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--uuid-file-save={}", uuid_file.display()));
    args.extend(task_dirs(&env, ALLOC, "six"));
    args.extend([
        img.clone(),
        "--exec=sleep".into(),
        "--memory=64M".into(),
        "--cpu=250m".into(),
        "--net=host".into(),
        "--".into(),
        "60".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = env
        .cmd(&refs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let uuid = TestEnv::wait_uuid(&uuid_file);
    env.rkt(&["status", "--wait-ready=20s", &uuid]).ok();
    let ps = env.rkt(&["enter", &uuid, "ps", "-o", "args"]);
    assert!(
        ps.ok().lines().any(|l| l.starts_with("/bin/sleep 60")),
        "{ps:?}"
    );
    // Nomad stops tasks with SIGINT to the rkt process.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// Nomad 0.9 running a service: prepare with `--port`, run-prepared on the default network,
/// poll `rkt status --format=json` for the pod's IP as the driver does (networks[0].ip, a
/// global unicast address), read the app's port from `cat-manifest`, reach the task through
/// the mapped host port, stop with SIGINT, then `rkt rm`, which takes the network down.
#[test]
fn nomad_09_service_with_networking_and_a_mapped_port() {
    if !require_root("nomad_09_service_with_networking_and_a_mapped_port") {
        return;
    }
    use super::net::{free_port, host_address, http_get, owned_by};
    let env = TestEnv::new();
    let mut spec = ImageSpec::new("example.com/nomad-web", &["/bin/httpd"]).file(
        "www/index.html",
        0o644,
        b"hello from the task\n",
    );
    spec.app().ports.push(aci::schema::Port {
        name: "http".into(),
        protocol: "tcp".into(),
        port: 80,
        ..Default::default()
    });
    let img = env.image(&spec, "web.aci");
    let host_port = free_port();
    let mut args: Vec<String> = ["--insecure-options=all", "--debug=false", "prepare"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(task_dirs(&env, ALLOC, "web"));
    args.push("--set-env=NOMAD_TASK_NAME=web".into());
    args.push(img);
    args.extend([
        "--exec=/bin/httpd".to_string(),
        "--memory=134217728".into(),
        "--cpu=100".into(),
        format!("--port=http:{host_port}"),
        "--user=0".into(),
        "--group=0".into(),
        "--".into(),
        "-f".into(),
        "-p".into(),
        "80".into(),
        "-h".into(),
        "/www".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let prepared = env.rkt(&refs);
    let uuid = prepared.ok().trim().to_string();
    let mut task = env
        .cmd(&[
            "--insecure-options=all",
            "--debug=false",
            "run-prepared",
            "--net=default",
            &uuid,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ip = String::new();
    let found = TestEnv::wait_for(std::time::Duration::from_secs(60), || {
        let status = env.rkt(&["status", "--format=json", &uuid]);
        if status.code != 0 {
            return false;
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&status.stdout) else {
            return false;
        };
        let Some(addr) = json["networks"][0]["ip"]
            .as_str()
            .and_then(|s| s.parse::<std::net::Ipv4Addr>().ok())
        else {
            return false;
        };
        // Go's IsGlobalUnicast for IPv4.
        let global = !addr.is_loopback()
            && !addr.is_link_local()
            && !addr.is_multicast()
            && !addr.is_broadcast()
            && !addr.is_unspecified();
        ip = addr.to_string();
        global && json["networks"][0]["netName"] == "default"
    });
    assert!(found, "no pod IP in rkt status");
    assert!(ip.starts_with("172.16.28."), "{ip}");
    let manifest: serde_json::Value =
        serde_json::from_str(env.rkt(&["cat-manifest", &uuid]).ok()).unwrap();
    let apps = manifest["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["app"]["ports"][0]["name"], "http");
    assert_eq!(apps[0]["app"]["ports"][0]["port"], 80);
    assert_eq!(manifest["ports"][0]["hostPort"], host_port);
    assert_eq!(
        http_get(&format!("127.0.0.1:{host_port}")),
        "hello from the task\n"
    );
    assert_eq!(
        http_get(&format!("{}:{host_port}", host_address())),
        "hello from the task\n"
    );
    assert!(!owned_by(&uuid, &[]).is_empty());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(task.id() as i32, libc::SIGINT) };
    let status = task.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let rm = env.rkt(&["rm", &uuid]);
    assert_eq!(rm.ok(), format!("\"{uuid}\"\n"));
    assert_eq!(owned_by(&uuid, &[]), Vec::<String>::new());
}
