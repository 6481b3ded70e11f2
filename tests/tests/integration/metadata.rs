//! `rkt metadata-service` and `rkt run --mds-register`: apps reading their pod's identity,
//! signing and verifying, deregistration by gc, and a service that keeps serving under load
//! and bad requests.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;

use rkt_tests::env::Run;
use rkt_tests::mds::Mds;
use rkt_tests::{require_root, ImageSpec, TestEnv};

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn apps_read_their_identity_and_sign_through_the_metadata_service() {
    if !require_root("apps_read_their_identity_and_sign_through_the_metadata_service") {
        return;
    }
    let env = TestEnv::new();
    let mds = Mds::start(&env);
    let script = "echo url=$AC_METADATA_URL; m=$AC_METADATA_URL/acMetadata/v1; \
                  echo uuid=$(wget -q -O - $m/pod/uuid); \
                  echo id=$(wget -q -O - $m/apps/reader/image/id); \
                  echo owner=$(wget -q -O - $m/apps/reader/annotations/owner); \
                  echo sig=$(wget -q -O - --post-data 'content=hello' $m/pod/hmac/sign)";
    let img = ImageSpec::shell("example.com/reader", script).annotation("owner", "team-a");
    let img = env.image(&img, "reader.aci");
    let uuid_file = env.work().join("uuid");
    let save = format!("--uuid-file-save={}", uuid_file.display());
    let out = mds.rkt(
        &env,
        &[
            "--insecure-options=image",
            "run",
            &save,
            "--mds-register",
            "--net=host",
            &img,
        ],
    );
    let s = out.ok();
    let value = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_string()
    };
    let uuid = std::fs::read_to_string(&uuid_file).unwrap();
    assert_eq!(value("uuid"), uuid, "{out:?}");
    assert!(value("id").starts_with("sha512-"), "{out:?}");
    assert_eq!(value("owner"), "team-a", "{out:?}");
    let url = value("url");
    let token = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(url, format!("http://127.0.0.1:{}/{token}", mds.port));
    // The signature the app got verifies for its pod and content, and only for those.
    let sig = escape(&value("sig"));
    let verify = |content: &str, uuid: &str| {
        mds.request(
            "POST",
            &format!("/{token}/acMetadata/v1/pod/hmac/verify"),
            &format!("uuid={uuid}&content={content}&signature={sig}"),
        )
        .0
    };
    assert_eq!(verify("hello", &uuid), 200);
    assert_eq!(verify("hellO", &uuid), 403);
    assert_eq!(verify("hello", "0b0a4c7a-8d4c-4e0b-9b3e-0a8f2a6c1d2e"), 403);
    // gc forgets the pod: its token is worth nothing any more.
    mds.rkt(&env, &["gc", "--grace-period=0s"]).ok();
    let (status, _) = mds.request("GET", &format!("/{token}/acMetadata/v1/pod/uuid"), "");
    assert_eq!(status, 401);
}

#[test]
fn registration_needs_a_running_service_and_a_network() {
    if !require_root("registration_needs_a_running_service_and_a_network") {
        return;
    }
    let env = TestEnv::new();
    let img = env.image(
        &ImageSpec::shell("example.com/lonely", "true"),
        "lonely.aci",
    );
    let missing = env.work().join("no-such.sock");
    let out = Run::from(
        env.cmd(&[
            "--insecure-options=image",
            "run",
            "--mds-register",
            "--net=host",
            &img,
        ])
        .env("RKT_METADATA_SOCKET", &missing)
        .output()
        .unwrap(),
    );
    assert_eq!(out.code, 254, "{out:?}");
    assert!(
        out.stderr.contains("is `rkt metadata-service` running?"),
        "{out:?}"
    );
    let out = env.run(&["--mds-register", "--net=none", &img]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("--net=none"), "{out:?}");
}

#[test]
fn the_service_keeps_serving_through_bad_requests_and_load() {
    if !require_root("the_service_keeps_serving_through_bad_requests_and_load") {
        return;
    }
    let env = TestEnv::new();
    let mds = Mds::start(&env);
    // Register 20 pods directly, as stage0 does.
    let mut tokens = Vec::new();
    for i in 0..20 {
        let uuid = format!("00000000-0000-4000-8000-{i:012}");
        let token = format!("token{i}");
        let mut s = std::os::unix::net::UnixStream::connect(&mds.socket).unwrap();
        let body = r#"{"acKind":"PodManifest","acVersion":"0.8.11","apps":[]}"#;
        write!(
            s,
            "PUT /pods/{uuid}?token={token} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        tokens.push((uuid, token));
    }
    // Garbage, a huge body and a silent client do not disturb anyone else.
    let mut garbage = TcpStream::connect(("127.0.0.1", mds.port)).unwrap();
    garbage.write_all(b"\x00\x01 nonsense\r\n\r\n").unwrap();
    let mut reply = String::new();
    garbage.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    let (status, _) = mds.request(
        "POST",
        "/token0/acMetadata/v1/pod/hmac/sign",
        &"a".repeat(200_000),
    );
    assert_eq!(status, 413);
    let _silent = TcpStream::connect(("127.0.0.1", mds.port)).unwrap();
    // 200 requests at once, 10 per pod.
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let (uuid, token) = tokens[i % 20].clone();
            let port = mds.port;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                write!(s, "GET /{token}/acMetadata/v1/pod/uuid HTTP/1.1\r\n\r\n").unwrap();
                let mut reply = String::new();
                s.read_to_string(&mut reply).unwrap();
                (reply, uuid)
            })
        })
        .collect();
    for h in handles {
        let (reply, uuid) = h.join().unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with(&uuid), "{reply}");
    }
}

/// The appc executor validator (`ace/validator.go` of the appc spec, from Debian's
/// golang-github-appc-spec-dev), built static with Go.
fn ace_validator(env: &TestEnv) -> PathBuf {
    let out = env.work().join("ace-validator");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg("github.com/appc/spec/ace")
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", env.work().join("go-cache"))
        .output()
        .expect("go is installed (Debian golang-go, see .ci/run)");
    assert!(
        built.status.success(),
        "building the ACE validator: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

#[test]
fn the_appc_executor_validator_passes() {
    if !require_root("the_appc_executor_validator_passes") {
        return;
    }
    let env = TestEnv::new();
    std::fs::create_dir_all(env.work()).unwrap();
    let validator = std::fs::read(ace_validator(&env)).unwrap();
    let main = ImageSpec::new(
        "example.com/ace-validator-main",
        &["/ace-validator", "main"],
    )
    .file("/ace-validator", 0o755, &validator)
    .dir("/opt/acvalidator", 0o755)
    .working_dir("/opt/acvalidator")
    .env("IN_ACE_VALIDATOR", "correct")
    .mount_point("database", "/db", false)
    .handler("pre-start", &["/ace-validator", "prestart"])
    .handler("post-stop", &["/ace-validator", "poststop"])
    .annotation("created-by", "rkt-tests");
    let sidekick = ImageSpec::new(
        "example.com/ace-validator-sidekick",
        &["/ace-validator", "sidekick"],
    )
    .file("/ace-validator", 0o755, &validator)
    .mount_point("database", "/db", false);
    let main = env.image(&main, "main.aci");
    let sidekick = env.image(&sidekick, "sidekick.aci");
    let mds = Mds::start(&env);
    let out = mds.rkt(
        &env,
        &[
            "--insecure-options=image",
            "run",
            "--mds-register",
            "--net=host",
            "--volume",
            "database,kind=empty",
            &main,
            &sidekick,
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    for mode in ["prestart OK", "main OK", "sidekick OK", "poststop OK"] {
        assert!(out.stdout.lines().any(|l| l == mode), "{mode}: {out:?}");
    }
}

/// The token is the pod's identity, and its address must be the pod's too: a token learnt by
/// another pod is refused from there.
#[test]
fn another_pods_token_is_refused_from_the_wrong_address() {
    if !require_root("another_pods_token_is_refused_from_the_wrong_address") {
        return;
    }
    let env = TestEnv::new();
    let mds = Mds::start(&env);
    let img = env.image(
        &ImageSpec::shell(
            "example.com/thief",
            "echo url=$AC_METADATA_URL; \
             wget -q -O - $AC_METADATA_URL/acMetadata/v1/pod/uuid >/dev/null && echo own:ok; \
             [ -n \"$STOLEN\" ] && { wget -O - $STOLEN/acMetadata/v1/pod/uuid 2>&1 | grep -o 'HTTP/1.1 [0-9]*'; }; true",
        ),
        "thief.aci",
    );
    // The first pod on the default network tells us its URL, then exits (still registered).
    let first = mds.rkt(
        &env,
        &["--insecure-options=image", "run", "--mds-register", &img],
    );
    let out = first.ok();
    assert!(out.contains("own:ok"), "{first:?}");
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("url="))
        .unwrap()
        .to_string();
    // A second pod, with its own address, presents the first one's token.
    let stolen = format!("--set-env=STOLEN={url}");
    let second = mds.rkt(
        &env,
        &[
            "--insecure-options=image",
            "run",
            "--mds-register",
            &stolen,
            &img,
        ],
    );
    let out = second.ok();
    assert!(out.contains("own:ok"), "{second:?}");
    assert!(out.contains("HTTP/1.1 403"), "{second:?}");
}
