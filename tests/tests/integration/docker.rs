//! `docker://` images from Debian's `docker-registry` on loopback (HTTPS with a CA made by the
//! test), pushed by Debian's `skopeo` from OCI layouts the test builds; and a fake registry
//! (our HTTPS test server) that lies about digests or serves a hostile layer.
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

use rkt_tests::env::Run;
use rkt_tests::https::{Pki, Reply, Server};
use rkt_tests::oci::{write_layout, LayerBuilder, OciLayer, Registry};
use rkt_tests::{require_root, TestEnv};
use serde_json::json;

struct World {
    env: TestEnv,
    pki: Pki,
}

impl World {
    fn new() -> World {
        let env = TestEnv::new();
        let pki = Pki::new(&env.work().join("pki"));
        World { env, pki }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let cfg = self.env.work().join("no-config");
        let mut all = vec![
            format!("--local-config={}", cfg.display()),
            format!("--system-config={}", cfg.display()),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut cmd = self.env.cmd(&refs);
        cmd.env("SSL_CERT_FILE", &self.pki.ca_pem);
        cmd
    }

    fn rkt(&self, args: &[&str]) -> Run {
        Run::of(&mut self.cmd(args))
    }

    fn blob_cache(&self) -> PathBuf {
        self.env.data_dir().join("cas/docker-blobs")
    }

    fn stored_images(&self) -> usize {
        std::fs::read_dir(self.env.data_dir().join("cas/image"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn base_layer() -> OciLayer {
    LayerBuilder::new()
        .busybox()
        .dir("etc/")
        .file("etc/greeting", 0o644, b"from the base layer\n")
        .file("etc/gone", 0o644, b"deleted above\n")
        .dir("var/")
        .dir("var/cache/")
        .file("var/cache/old", 0o644, b"hidden by an opaque dir\n")
        .dir("data/")
        .file("data/seed", 0o644, b"volume content\n")
        .build()
}

#[test]
fn docker_images_are_squashed_mapped_cached_and_run() {
    if !require_root("docker_images_are_squashed_mapped_cached_and_run") {
        return;
    }
    let w = World::new();
    let registry = Registry::start(&w.env.work().join("registry"), &w.pki);
    let base = base_layer();
    let top = LayerBuilder::new()
        .dir("etc/")
        .file("etc/greeting", 0o644, b"from the top layer\n")
        .file("etc/.wh.gone", 0o644, b"")
        .dir("var/cache/")
        .file("var/cache/.wh..wh..opq", 0o644, b"")
        .file("var/cache/new", 0o644, b"new\n")
        .build();
    let layout = w.env.work().join("layout");
    write_layout(
        &layout,
        "1.0",
        json!({
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["cat /etc/greeting; echo $GREETING; cat /data/seed; touch /data/written"],
            "Env": ["GREETING=hello-docker", "PATH=/bin"],
            "WorkingDir": "/etc",
            "ExposedPorts": {"8080/tcp": {}},
            "Volumes": {"/data": {}},
            "Labels": {"maintainer": "tests"},
        }),
        &[base.clone(), top.clone()],
    );
    registry.push(&layout, "1.0", "test/app");
    let image = format!("docker://127.0.0.1:{}/test/app:1.0", registry.port);

    // Docker images carry no appc signature.
    let out = w.rkt(&["fetch", &image]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("--insecure-options=image"), "{out:?}");

    let out = w.rkt(&["--insecure-options=image", "fetch", &image]);
    let id = out.ok().trim().to_string();
    assert!(id.starts_with("sha512-"), "{out:?}");
    let mut cached: Vec<_> = std::fs::read_dir(w.blob_cache())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    cached.sort();
    let mut expected = vec![base.digest.replace(':', "-"), top.digest.replace(':', "-")];
    expected.sort();
    assert_eq!(cached, expected);

    // The manifest, as docker2aci maps the image config.
    let m = w.rkt(&["image", "cat-manifest", &id]);
    let m: serde_json::Value = serde_json::from_str(m.ok()).unwrap();
    let name = format!("127.0.0.1-{}/test/app", registry.port);
    assert_eq!(m["name"], name.as_str());
    let app = &m["app"];
    assert_eq!(
        app["exec"],
        json!([
            "/bin/sh",
            "-c",
            "cat /etc/greeting; echo $GREETING; cat /data/seed; touch /data/written"
        ])
    );
    assert_eq!(app["workingDirectory"], "/etc");
    assert_eq!(app["ports"][0]["name"], "8080-tcp");
    assert_eq!(
        app["mountPoints"][0],
        json!({"name": "volume-data", "path": "/data"})
    );
    assert!(m["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "appc.io/docker/repository" && a["value"] == "test/app"));
    let labels = m["labels"].as_array().unwrap();
    assert!(labels
        .iter()
        .any(|l| l["name"] == "version" && l["value"] == "1.0"));

    // Squashed: upper files win, whiteouts and opaque directories hide lower content.
    let out_dir = w.env.work().join("rendered");
    w.rkt(&["image", "render", &id, &out_dir.display().to_string()])
        .ok();
    let rootfs = out_dir.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/greeting")).unwrap(),
        "from the top layer\n"
    );
    assert!(!rootfs.join("etc/gone").exists());
    assert!(!rootfs.join("var/cache/old").exists());
    assert!(rootfs.join("var/cache/new").is_file());
    assert!(!walk(&rootfs).iter().any(|p| p.contains(".wh.")));

    // A second fetch of the unchanged image downloads no layer and stores nothing new.
    let inodes: Vec<u64> = expected
        .iter()
        .map(|f| std::fs::metadata(w.blob_cache().join(f)).unwrap().ino())
        .collect();
    let again = w.rkt(&["--insecure-options=image", "fetch", &image]);
    assert_eq!(again.ok().trim(), id);
    assert_eq!(w.stored_images(), 1);

    // Another image sharing the base layer downloads only its own layer.
    let other_top = LayerBuilder::new()
        .file("etc/other", 0o644, b"other\n")
        .build();
    let layout2 = w.env.work().join("layout2");
    write_layout(
        &layout2,
        "2.0",
        json!({"Cmd": ["/bin/cat", "/etc/other"]}),
        &[base.clone(), other_top.clone()],
    );
    registry.push(&layout2, "2.0", "test/other");
    let other = format!("docker://127.0.0.1:{}/test/other:2.0", registry.port);
    w.rkt(&["--insecure-options=image", "fetch", &other]).ok();
    assert_eq!(
        std::fs::metadata(w.blob_cache().join(&expected[0]))
            .unwrap()
            .ino(),
        inodes[0]
    );
    assert_eq!(std::fs::read_dir(w.blob_cache()).unwrap().count(), 3);

    // It runs: Entrypoint plus Cmd, the image's environment; an image with only Cmd too.
    let out = Run::of(&mut w.cmd(&["--insecure-options=image", "run", &image]));
    let stdout = out.ok();
    assert!(stdout.contains("from the top layer"), "{out:?}");
    assert!(stdout.contains("hello-docker"), "{out:?}");
    // Docker volume semantics: the implicit volume at /data starts with the image's content.
    assert!(stdout.contains("volume content"), "{out:?}");
    assert!(
        out.stderr
            .contains("implicitly creating an \"empty\" volume"),
        "{out:?}"
    );
    let out = Run::of(&mut w.cmd(&["--insecure-options=image", "run", &other]));
    assert!(out.ok().contains("other"), "{out:?}");
    // Only an Entrypoint.
    let layout3 = w.env.work().join("layout3");
    write_layout(
        &layout3,
        "3.0",
        json!({"Entrypoint": ["/bin/echo", "entrypoint-only"]}),
        std::slice::from_ref(&base),
    );
    registry.push(&layout3, "3.0", "test/entry");
    let entry = format!("docker://127.0.0.1:{}/test/entry:3.0", registry.port);
    let out = Run::of(&mut w.cmd(&["--insecure-options=image", "run", &entry]));
    assert!(out.ok().contains("entrypoint-only"), "{out:?}");

    // Pull policy never with an unknown image: refused.
    let out = w.rkt(&[
        "--insecure-options=image",
        "fetch",
        "--pull-policy=never",
        &format!("docker://127.0.0.1:{}/test/missing:1", registry.port),
    ]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(
        out.stderr.contains("unable to fetch docker image"),
        "{out:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.display().to_string());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walk(&p));
            }
        }
    }
    out
}

/// A fake registry (our HTTPS server) serving one image whose manifest lists `layer_digest`
/// but whose blob is `layer_blob`.
fn fake_registry(w: &World, repo: &str, layer_digest: &str, layer_blob: &[u8]) -> Server {
    fake_registry_with(Server::https(&w.pki), repo, layer_digest, layer_blob, |r| r)
}

/// The same, each reply of the repository passed through `wrap` (to require credentials).
fn fake_registry_with(
    server: Server,
    repo: &str,
    layer_digest: &str,
    layer_blob: &[u8],
    wrap: impl Fn(Reply) -> Reply,
) -> Server {
    let config = serde_json::to_vec(
        &json!({"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]}}),
    )
    .unwrap();
    let config_digest = rkt_tests_sha256(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_blob.len()}],
    }))
    .unwrap();
    server.route("/v2/", Reply::file(b"{}"));
    server.route(
        &format!("/v2/{repo}/manifests/1.0"),
        wrap(Reply::file(&manifest)),
    );
    server.route(
        &format!("/v2/{repo}/blobs/{config_digest}"),
        wrap(Reply::file(&config)),
    );
    server.route(
        &format!("/v2/{repo}/blobs/{layer_digest}"),
        wrap(Reply::file(layer_blob)),
    );
    server
}

fn rkt_tests_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[test]
fn lying_registries_and_hostile_layers_are_refused_and_leave_nothing() {
    if !require_root("lying_registries_and_hostile_layers_are_refused_and_leave_nothing") {
        return;
    }
    let w = World::new();
    let honest = LayerBuilder::new().file("etc/x", 0o644, b"x").build();
    let other = LayerBuilder::new().file("etc/y", 0o644, b"y").build();
    // The manifest names one layer, the registry serves another.
    let liar = fake_registry(&w, "test/liar", &honest.digest, &other.blob);
    let image = format!("docker://127.0.0.1:{}/test/liar:1.0", liar.port());
    let out = w.rkt(&["--insecure-options=image", "fetch", &image]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("digest mismatch"), "{out:?}");
    assert!(out.stderr.contains("test/liar"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert_eq!(w.stored_images(), 0);
    let cache_files = std::fs::read_dir(w.blob_cache())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(cache_files, 0, "nothing of the lying layer is kept");

    // A layer (with a correct digest) that reaches outside the image.
    let evil = LayerBuilder::new()
        .raw_file(b"../../../../tmp/rkt-docker-escape", b"x")
        .build();
    let hostile = fake_registry(&w, "test/evil", &evil.digest, &evil.blob);
    let image = format!("docker://127.0.0.1:{}/test/evil:1.0", hostile.port());
    let out = w.rkt(&["--insecure-options=image", "fetch", &image]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("path traversal"), "{out:?}");
    assert_eq!(w.stored_images(), 0);
    assert!(!std::path::Path::new("/tmp/rkt-docker-escape").exists());

    // A bad reference.
    let out = w.rkt(&["--insecure-options=image", "fetch", "docker://UPPER/Case"]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("invalid docker URL"), "{out:?}");
}

/// Bearer tokens: the registry's challenge names a token service, which wants the
/// `dockerAuth` user and password of `auth.d`; neither the password nor the token is printed.
#[test]
fn registry_bearer_tokens_are_obtained_with_docker_auth_credentials() {
    if !require_root("registry_bearer_tokens_are_obtained_with_docker_auth_credentials") {
        return;
    }
    let w = World::new();
    let layer = LayerBuilder::new().busybox().build();
    let server = Server::https(&w.pki);
    let port = server.port();
    let challenge = format!(
        r#"Bearer realm="https://127.0.0.1:{port}/token",service="fake-registry",scope="repository:test/private:pull""#
    );
    let token = "tok-0123456789";
    let server = fake_registry_with(server, "test/private", &layer.digest, &layer.blob, |r| {
        Reply::Auth {
            expect: format!("Bearer {token}"),
            challenge: challenge.clone(),
            then: Box::new(r),
        }
    });
    // base64("robot:pa55word")
    server.route(
        "/token?service=fake-registry&scope=repository%3Atest%2Fprivate%3Apull",
        Reply::Auth {
            expect: "Basic cm9ib3Q6cGE1NXdvcmQ=".into(),
            challenge: "Basic realm=\"tokens\"".into(),
            then: Box::new(Reply::file(format!(r#"{{"token":"{token}"}}"#).as_bytes())),
        },
    );
    let image = format!("docker://127.0.0.1:{port}/test/private:1.0");

    let out = w.rkt(&["--insecure-options=image", "fetch", &image]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("authentication to"), "{out:?}");
    assert_eq!(w.stored_images(), 0);

    let auth = w.env.work().join("no-config/auth.d");
    std::fs::create_dir_all(&auth).unwrap();
    std::fs::write(
        auth.join("registry.json"),
        format!(
            r#"{{"rktKind":"dockerAuth","rktVersion":"v1","registries":["127.0.0.1:{port}"],"credentials":{{"user":"robot","password":"pa55word"}}}}"#
        ),
    )
    .unwrap();
    let out = w.rkt(&["--debug", "--insecure-options=image", "fetch", &image]);
    assert!(out.ok().trim().starts_with("sha512-"), "{out:?}");
    for secret in ["pa55word", token, "cm9ib3Q6"] {
        assert!(!out.stderr.contains(secret), "{secret} printed: {out:?}");
    }
}
