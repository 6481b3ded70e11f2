//! Images from the world: HTTPS servers on loopback with a CA made by the test, keys and
//! signatures made by real GnuPG, `rkt trust`, appc discovery (in a network namespace of the
//! test's own, where the server can own port 443), configuration directories.
use std::path::{Path, PathBuf};
use std::process::Command;

use rkt_tests::env::Run;
use rkt_tests::gpg::Gpg;
use rkt_tests::https::{Pki, Reply, Server};
use rkt_tests::netns::Netns;
use rkt_tests::pty::OperatorTty;
use rkt_tests::{require_root, ImageSpec, TestEnv};

const SIGNER: &str = "Test Signer <signer@example.com>";
const STRANGER: &str = "Someone Else <else@example.com>";

/// A test's data directory, configuration directories, CA and GnuPG home.
struct World {
    env: TestEnv,
    pki: Pki,
    gpg: Gpg,
}

impl World {
    fn new() -> World {
        let env = TestEnv::new();
        let pki = Pki::new(&env.work().join("pki"));
        let gpg = Gpg::new(&env.work());
        gpg.generate(SIGNER, "ed25519");
        World { env, pki, gpg }
    }

    fn local_config(&self) -> PathBuf {
        self.env.work().join("etc-rkt")
    }

    fn system_config(&self) -> PathBuf {
        self.env.work().join("usr-lib-rkt")
    }

    /// `rkt` with this world's directories, trusting the test CA.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut all = vec![
            format!("--local-config={}", self.local_config().display()),
            format!("--system-config={}", self.system_config().display()),
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

    /// Builds a small image named `name` and signs it with `uid`; returns the ACI's bytes and
    /// its signature.
    fn signed_image(&self, name: &str, file: &str, uid: &str) -> (Vec<u8>, Vec<u8>) {
        // The file name in the exec makes images of one name differ.
        let mut spec = ImageSpec::shell(name, &format!("echo {file}"));
        spec.with_busybox = false;
        let aci = PathBuf::from(self.env.image(&spec, file));
        let asc = self.env.work().join(format!("{file}.asc"));
        self.gpg.sign(uid, &aci, &asc);
        (std::fs::read(&aci).unwrap(), std::fs::read(&asc).unwrap())
    }

    fn key_file(&self, uid: &str) -> PathBuf {
        let path = self
            .env
            .work()
            .join(format!("{}.pub", self.gpg.fingerprint(uid)));
        std::fs::write(&path, self.gpg.export(uid)).unwrap();
        path
    }

    fn trust(&self, prefix: &str, uid: &str) {
        let key = self.key_file(uid);
        let out = self.rkt(&[
            "trust",
            &format!("--prefix={prefix}"),
            "--skip-fingerprint-review",
            &key.display().to_string(),
        ]);
        out.ok();
    }

    fn stored_images(&self) -> usize {
        std::fs::read_dir(self.env.data_dir().join("cas/image"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// The image ID, the last line of stdout (`rkt trust`'s lines may come before it).
fn id_line(run: &Run) -> String {
    let out = run.ok().lines().last().unwrap_or_default().to_string();
    assert!(out.starts_with("sha512-"), "{run:?}");
    out
}

#[test]
fn https_images_are_verified_cached_by_etag_and_by_pull_policy() {
    if !require_root("https_images_are_verified_cached_by_etag_and_by_pull_policy") {
        return;
    }
    let w = World::new();
    let (aci, asc) = w.signed_image("example.com/remote-app", "app.aci", SIGNER);
    let server = Server::https(&w.pki);
    server.route("/app.aci", Reply::file(&aci).with_header("ETag", "\"v1\""));
    server.route("/app.aci.asc", Reply::file(&asc));
    let url = server.url("/app.aci");

    // No key trusted yet: refused with rkt's hint, before anything is stored.
    let out = w.rkt(&["fetch", &url]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(
        out.stderr.contains("signature made by unknown entity"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("rkt trust --prefix \"example.com/remote-app\""),
        "{out:?}"
    );
    assert_eq!(w.stored_images(), 0);

    w.trust("example.com/remote-app", SIGNER);
    let out = w.rkt(&["fetch", &url]);
    let id = id_line(&out);
    assert!(
        out.stderr
            .contains(&format!("image: signature verified:\n  {SIGNER}")),
        "{out:?}"
    );
    // Not a terminal: no progress bar.
    assert!(!out.stderr.contains("Downloading"), "{out:?}");
    // The refused fetch downloaded it too (an URL's name is known only from its manifest).
    assert_eq!(server.hits("/app.aci").len(), 2);

    // Fetch (pull policy update) again: the server says 304 to the ETag, nothing is sent.
    let again = w.rkt(&["fetch", &url]);
    assert_eq!(id_line(&again), id);
    let hits = server.hits("/app.aci");
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[2].status, 304, "{hits:?}");
    assert!(hits[2]
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("if-none-match") && v == "\"v1\""));

    // Pull policy new takes the stored image for the URL without asking the server; never
    // too; and the image ID is the same.
    for policy in ["--pull-policy=new", "--pull-policy=never"] {
        let out = w.rkt(&["fetch", policy, &url]);
        assert_eq!(id_line(&out), id);
    }
    assert_eq!(server.hits("/app.aci").len(), 3);
    assert_eq!(w.stored_images(), 1);

    // A URL never fetched, with pull policy never: refused.
    let out = w.rkt(&["fetch", "--pull-policy=never", &server.url("/other.aci")]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(
        out.stderr.contains("unable to fetch image from URL"),
        "{out:?}"
    );
}

#[test]
fn max_age_means_no_request_while_fresh() {
    if !require_root("max_age_means_no_request_while_fresh") {
        return;
    }
    let w = World::new();
    let (aci, _) = w.signed_image("example.com/fresh", "fresh.aci", SIGNER);
    let server = Server::https(&w.pki);
    server.route(
        "/fresh.aci",
        Reply::file(&aci).with_header("Cache-Control", "max-age=3600"),
    );
    let url = server.url("/fresh.aci");
    let first = w.rkt(&["--insecure-options=image", "fetch", &url]);
    let second = w.rkt(&["--insecure-options=image", "fetch", &url]);
    assert_eq!(id_line(&first), id_line(&second));
    assert_eq!(server.hits("/fresh.aci").len(), 1);
}

#[test]
fn tls_is_verified_and_plain_http_needs_insecure_options() {
    if !require_root("tls_is_verified_and_plain_http_needs_insecure_options") {
        return;
    }
    let w = World::new();
    let (aci, _) = w.signed_image("example.com/tls", "tls.aci", SIGNER);
    let server = Server::https(&w.pki);
    server.route("/tls.aci", Reply::file(&aci));
    let url = server.url("/tls.aci");

    // Without the test CA the certificate is not trusted.
    let empty_bundle = w.env.work().join("no-cas.pem");
    std::fs::write(&empty_bundle, b"").unwrap();
    let mut cmd = w.cmd(&["--insecure-options=image", "fetch", &url]);
    cmd.env("SSL_CERT_FILE", &empty_bundle);
    let out = Run::of(&mut cmd);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains(&url), "{out:?}");
    assert!(out.stderr.to_lowercase().contains("certificate"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert_eq!(w.stored_images(), 0);
    // --insecure-options=tls accepts it.
    let mut cmd = w.cmd(&["--insecure-options=image,tls", "fetch", &url]);
    cmd.env("SSL_CERT_FILE", "/nonexistent-ca.pem");
    id_line(&Run::of(&mut cmd));

    let plain = Server::http();
    plain.route("/plain.aci", Reply::file(&aci));
    let purl = plain.url("/plain.aci");
    let out = w.rkt(&["--insecure-options=image", "fetch", &purl]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("--insecure-options=http"), "{out:?}");
    assert!(plain.all_hits().is_empty());
    id_line(&w.rkt(&["--insecure-options=image,http", "fetch", &purl]));
}

#[test]
fn redirects_are_followed_and_the_signature_is_next_to_the_url() {
    if !require_root("redirects_are_followed_and_the_signature_is_next_to_the_url") {
        return;
    }
    let w = World::new();
    let (aci, asc) = w.signed_image("example.com/moved", "moved.aci", SIGNER);
    w.trust("example.com", SIGNER);
    let server = Server::https(&w.pki);
    server.route(
        "/old/moved.aci",
        Reply::Redirect(server.url("/new/moved.aci")),
    );
    server.route(
        "/old/moved.aci.asc",
        Reply::Redirect(server.url("/new/moved.aci.asc")),
    );
    server.route("/new/moved.aci", Reply::file(&aci));
    server.route("/new/moved.aci.asc", Reply::file(&asc));
    let out = w.rkt(&["fetch", &server.url("/old/moved.aci")]);
    id_line(&out);
    // A key trusted for a prefix above the name applies.
    assert!(out.stderr.contains(SIGNER), "{out:?}");
}

/// Each bad download: exit 254, an error line naming the image and the cause, nothing stored.
#[test]
fn bad_downloads_are_refused_and_leave_nothing() {
    if !require_root("bad_downloads_are_refused_and_leave_nothing") {
        return;
    }
    let w = World::new();
    w.gpg.generate(STRANGER, "rsa2048");
    let (aci, asc) = w.signed_image("example.com/bad", "bad.aci", SIGNER);
    let (other, other_asc) = w.signed_image("example.com/bad", "other.aci", SIGNER);
    let (_, stranger_asc) = w.signed_image("example.com/bad", "stranger.aci", STRANGER);
    assert_ne!(aci, other);
    let _ = other_asc;
    w.trust("example.com/bad", SIGNER);
    let server = Server::https(&w.pki);
    let cases: Vec<(&str, Reply, Reply, &str)> = vec![
        (
            "notfound",
            Reply::Status(404),
            Reply::file(&asc),
            "bad HTTP status code: 404",
        ),
        (
            "nosig",
            Reply::file(&aci),
            Reply::Status(404),
            "error downloading the signature file",
        ),
        // A signature of other bytes by the trusted key.
        (
            "wrongsig",
            Reply::file(&other),
            Reply::file(&asc),
            "verification failed",
        ),
        (
            "untrusted",
            Reply::file(&aci),
            Reply::file(&stranger_asc),
            "signature made by unknown entity",
        ),
        (
            "truncated",
            Reply::Truncated {
                body: aci[..aci.len() / 2].to_vec(),
                claimed: aci.len(),
            },
            Reply::file(&asc),
            "error downloading ACI",
        ),
        (
            "garbagesig",
            Reply::file(&aci),
            Reply::file(b"not a signature"),
            "no valid signatures",
        ),
    ];
    for (name, image, sig, cause) in cases {
        server.route(&format!("/{name}.aci"), image);
        server.route(&format!("/{name}.aci.asc"), sig);
        let url = server.url(&format!("/{name}.aci"));
        let out = w.rkt(&["fetch", &url]);
        assert_eq!(out.code, 254, "{name}: {out:?}");
        let last = out.stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("fetch: "), "{name}: {out:?}");
        assert!(last.contains(cause), "{name}: {out:?}");
        assert!(
            last.contains(&url) || last.contains("example.com/bad"),
            "{name}: the error names the image: {out:?}"
        );
        assert_eq!(w.stored_images(), 0, "{name}: {out:?}");
        let tmp = std::fs::read_dir(w.env.data_dir().join("cas/tmp"))
            .unwrap()
            .count();
        assert_eq!(tmp, 0, "{name}: leftovers in cas/tmp");
    }
}

#[test]
fn a_server_that_never_answers_times_out() {
    if !require_root("a_server_that_never_answers_times_out") {
        return;
    }
    let w = World::new();
    let server = Server::https(&w.pki);
    server.route("/silent.aci", Reply::Silent);
    let out = w.rkt(&[
        "--insecure-options=image",
        "fetch",
        &server.url("/silent.aci"),
    ]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("timed out"), "{out:?}");
    assert_eq!(w.stored_images(), 0);
}

#[test]
fn a_killed_download_leaves_nothing() {
    if !require_root("a_killed_download_leaves_nothing") {
        return;
    }
    let w = World::new();
    let (aci, _) = w.signed_image("example.com/killed", "killed.aci", SIGNER);
    let server = Server::https(&w.pki);
    server.route(
        "/killed.aci",
        Reply::Stall {
            body: aci[..aci.len() / 2].to_vec(),
            claimed: aci.len(),
        },
    );
    let url = server.url("/killed.aci");
    let mut child = w
        .cmd(&["--insecure-options=image", "fetch", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(TestEnv::wait_for(
        std::time::Duration::from_secs(20),
        || { !server.hits("/killed.aci").is_empty() }
    ));
    // SAFETY: kill(2) on the PID of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert_eq!(w.stored_images(), 0);
    let leftovers: Vec<_> = std::fs::read_dir(w.env.data_dir().join("cas/tmp"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The next fetch starts afresh and succeeds.
    server.route("/killed.aci", Reply::file(&aci));
    id_line(&w.rkt(&["--insecure-options=image", "fetch", &url]));
}

#[test]
fn local_files_are_verified_with_their_signature_or_signature_flag() {
    if !require_root("local_files_are_verified_with_their_signature_or_signature_flag") {
        return;
    }
    let w = World::new();
    let (_, asc) = w.signed_image("example.com/local", "local.aci", SIGNER);
    let aci = w.env.work().join("local.aci");
    // Signature next to the image (`local.aci.asc`), trusted key: verified.
    let out = w.rkt(&["fetch", &aci.display().to_string()]);
    assert_eq!(out.code, 254, "{out:?}");
    w.trust("example.com/local", SIGNER);
    let out = w.rkt(&["fetch", &aci.display().to_string()]);
    id_line(&out);
    assert!(out.stderr.contains("signature verified"), "{out:?}");
    // --signature elsewhere.
    std::fs::remove_file(w.env.work().join("local.aci.asc")).unwrap();
    let moved = w.env.work().join("elsewhere.asc");
    std::fs::write(&moved, &asc).unwrap();
    let out = w.rkt(&["fetch", &aci.display().to_string()]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("--insecure-options=image"), "{out:?}");
    let out = w.rkt(&[
        "fetch",
        &aci.display().to_string(),
        &format!("--signature={}", moved.display()),
    ]);
    id_line(&out);
}

#[test]
fn an_empty_local_key_file_masks_the_system_key() {
    if !require_root("an_empty_local_key_file_masks_the_system_key") {
        return;
    }
    let w = World::new();
    w.signed_image("example.com/masked", "masked.aci", SIGNER);
    let aci = w.env.work().join("masked.aci").display().to_string();
    let fp = w.gpg.fingerprint(SIGNER);
    let sys = w.system_config().join("trustedkeys/prefix.d/example.com");
    std::fs::create_dir_all(&sys).unwrap();
    std::fs::write(sys.join(&fp), w.gpg.export(SIGNER)).unwrap();
    id_line(&w.rkt(&["fetch", &aci]));
    let local = w
        .local_config()
        .join("trustedkeys/prefix.d/example.com/masked");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join(&fp), b"").unwrap();
    let out = w.rkt(&["fetch", &aci]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("unknown entity"), "{out:?}");
    // A key file whose name is not its fingerprint is an error, not a silent pass.
    std::fs::remove_file(local.join(&fp)).unwrap();
    std::fs::write(
        local.join("0123456789abcdef0123456789abcdef01234567"),
        w.gpg.export(SIGNER),
    )
    .unwrap();
    let out = w.rkt(&["fetch", &aci]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("fingerprint mismatch"), "{out:?}");
}

#[test]
fn trust_stores_keys_as_rkt_does_and_refuses_bad_requests() {
    if !require_root("trust_stores_keys_as_rkt_does_and_refuses_bad_requests") {
        return;
    }
    let w = World::new();
    let key = w.key_file(SIGNER).display().to_string();
    let fp = w.gpg.fingerprint(SIGNER);

    let out = w.rkt(&["trust", &key]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("implicit unbounded trust"), "{out:?}");
    let out = w.rkt(&["trust", "--root", "--prefix=example.com", &key]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("mutually exclusive"), "{out:?}");
    let out = w.rkt(&["trust", "--prefix=https://example.com", &key]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("omit https://"), "{out:?}");
    let out = w.rkt(&[
        "trust",
        "--prefix=../../etc",
        "--skip-fingerprint-review",
        &key,
    ]);
    assert_eq!(out.code, 254, "{out:?}");
    // Without a terminal the fingerprint cannot be reviewed.
    let out = w.rkt(&["trust", "--prefix=example.com/app", &key]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("lack of tty"), "{out:?}");
    assert!(!w.local_config().join("trustedkeys").exists());

    let out = w.rkt(&["trust", "--root", "--skip-fingerprint-review", &key]);
    out.ok();
    let root_key = w.local_config().join("trustedkeys/root.d").join(&fp);
    assert!(
        out.stdout
            .contains(&format!("Added root key at \"{}\"", root_key.display())),
        "{out:?}"
    );
    assert_eq!(std::fs::read(&root_key).unwrap(), w.gpg.export(SIGNER));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&root_key).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert!(out.stdout.contains("gpg key fingerprint is: "), "{out:?}");

    // From an HTTPS URL.
    let server = Server::https(&w.pki);
    server.route("/key.gpg", Reply::file(&w.gpg.export(SIGNER)));
    let out = w.rkt(&[
        "trust",
        "--prefix=example.com/app",
        "--skip-fingerprint-review",
        &server.url("/key.gpg"),
    ]);
    out.ok();
    assert!(w
        .local_config()
        .join("trustedkeys/prefix.d/example.com/app")
        .join(&fp)
        .is_file());

    // With --insecure-options=image there is no keystore.
    let out = w.rkt(&["--insecure-options=image", "trust", "--root", &key]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("could not get the keystore"), "{out:?}");
}

/// Discovery of `localhost/...` names needs a server on port 443: it runs in a network
/// namespace of the test's own, with rkt.
#[test]
fn names_are_discovered_with_their_keys_and_must_match() {
    if !require_root("names_are_discovered_with_their_keys_and_must_match") {
        return;
    }
    let w = World::new();
    let (aci, asc) = w.signed_image("localhost/hello", "hello.aci", SIGNER);
    let (liar, liar_asc) = w.signed_image("localhost/impostor", "liar.aci", SIGNER);
    let ns = Netns::new();
    let pki_dir = w.env.work().join("pki");
    let server = ns.run(move || {
        let pki = Pki::reuse(&pki_dir);
        Server::https_on("[::]:443", &pki)
    });
    let page = |prefix: &str| {
        format!(
            "<html><head>\n<meta name=\"ac-discovery\" content=\"{prefix} https://localhost/images/{{name}}-{{version}}-{{os}}-{{arch}}.{{ext}}\">\n<meta name=\"ac-discovery-pubkeys\" content=\"{prefix} https://localhost/pubkeys.gpg\">\n</head></html>"
        )
    };
    server.route(
        "/hello?ac-discovery=1",
        Reply::file(page("localhost/hello").as_bytes()),
    );
    server.route(
        "/?ac-discovery=1",
        Reply::file(page("localhost").as_bytes()),
    );
    server.route("/pubkeys.gpg", Reply::file(&w.gpg.export(SIGNER)));
    server.route(
        "/images/localhost/hello-1.0.0-linux-amd64.aci",
        Reply::file(&aci),
    );
    server.route(
        "/images/localhost/hello-1.0.0-linux-amd64.aci.asc",
        Reply::file(&asc),
    );
    server.route(
        "/images/localhost/other-1.0.0-linux-amd64.aci",
        Reply::file(&liar),
    );
    server.route(
        "/images/localhost/other-1.0.0-linux-amd64.aci.asc",
        Reply::file(&liar_asc),
    );

    let in_ns = |args: &[&str]| {
        let mut cmd = w.cmd(args);
        ns.run(move || Run::of(&mut cmd))
    };
    // No key yet and no terminal: the key is found but cannot be reviewed, so the image is
    // refused as signed by an unknown key.
    let out = in_ns(&["fetch", "localhost/hello:1.0.0"]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("lack of tty"), "{out:?}");
    assert!(out.stderr.contains("unknown entity"), "{out:?}");
    assert_eq!(w.stored_images(), 0);

    // --trust-keys-from-https accepts the discovered key.
    let out = in_ns(&["--trust-keys-from-https", "fetch", "localhost/hello:1.0.0"]);
    id_line(&out);
    assert!(
        out.stdout
            .contains("Added key for prefix \"localhost/hello\""),
        "{out:?}"
    );
    assert!(out.stderr.contains("signature verified"), "{out:?}");
    let fp = w.gpg.fingerprint(SIGNER);
    assert!(w
        .local_config()
        .join("trustedkeys/prefix.d/localhost/hello")
        .join(&fp)
        .is_file());
    // The second time the key is there and the image (pull policy new) is in the store.
    let hits = server.all_hits().len();
    let out = in_ns(&[
        "--insecure-options=image",
        "fetch",
        "--pull-policy=new",
        "localhost/hello:1.0.0",
    ]);
    id_line(&out);
    assert_eq!(server.all_hits().len(), hits);

    // A name whose discovered image carries another name: refused, nothing stored.
    let before = w.stored_images();
    let out = in_ns(&["--trust-keys-from-https", "fetch", "localhost/other:1.0.0"]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(
        out.stderr
            .contains("\"localhost/other\" expected but \"localhost/impostor\" found"),
        "{out:?}"
    );
    assert_eq!(w.stored_images(), before);

    // `rkt trust --prefix` without keys discovers them.
    std::fs::remove_dir_all(w.local_config().join("trustedkeys")).unwrap();
    let out = in_ns(&[
        "trust",
        "--prefix=localhost/hello",
        "--skip-fingerprint-review",
    ]);
    out.ok();
    assert!(
        out.stdout.contains("https://localhost/pubkeys.gpg"),
        "{out:?}"
    );
    // A name nothing announces.
    server.route("/?ac-discovery=1", Reply::Status(404));
    let out = in_ns(&["fetch", "localhost/nothing:1.0.0"]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(
        out.stderr
            .contains("discovery failed for \"localhost/nothing\""),
        "{out:?}"
    );
    drop(server);
}

#[test]
fn config_directories_merge_and_rkt_config_prints_them() {
    if !require_root("config_directories_merge_and_rkt_config_prints_them") {
        return;
    }
    let w = World::new();
    let write = |dir: &Path, sub: &str, name: &str, body: &str| {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(dir.join(sub).join(name), body).unwrap();
    };
    let user = w.env.work().join("user-config");
    write(
        &w.system_config(),
        "auth.d",
        "a.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["a.example.com"],"type":"basic","credentials":{"user":"sysuser","password":"syspass"}}"#,
    );
    write(
        &w.local_config(),
        "auth.d",
        "a.json",
        r#"{"rktKind":"auth","rktVersion":"v1","domains":["a.example.com"],"type":"oauth","credentials":{"token":"tok"}}"#,
    );
    write(
        &user,
        "paths.d",
        "p.json",
        r#"{"rktKind":"paths","rktVersion":"v1","stage1-images":"/opt/stage1s"}"#,
    );
    write(
        &w.local_config(),
        "stage1.d",
        "s.json",
        r#"{"rktKind":"stage1","rktVersion":"v1","name":"example.com/stage1","version":"1.2.3"}"#,
    );
    write(
        &w.local_config(),
        "auth.d",
        "d.json",
        r#"{"rktKind":"dockerAuth","rktVersion":"v1","registries":["registry.example.com"],"credentials":{"user":"du","password":"dp"}}"#,
    );
    let out = w.rkt(&[
        &format!("--user-config={}", user.display()),
        "config",
        "--pretty-print=false",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.ok().trim()).unwrap();
    let expected = serde_json::json!({"stage0": [
        {"rktVersion":"v1","rktKind":"auth","domains":["a.example.com"],"type":"oauth","credentials":{"token":"tok"}},
        {"rktVersion":"v1","rktKind":"dockerAuth","registries":["registry.example.com"],"credentials":{"user":"du","password":"dp"}},
        {"rktVersion":"v1","rktKind":"paths","data":"","stage1-images":"/opt/stage1s"},
        {"rktVersion":"v1","rktKind":"stage1","name":"example.com/stage1","version":"1.2.3","location":""}
    ]});
    assert_eq!(v, expected);
    let pretty = w.rkt(&["config"]);
    assert!(pretty.ok().starts_with("{\n\t\"stage0\": ["), "{pretty:?}");

    // A broken file is an error naming it.
    write(
        &w.local_config(),
        "paths.d",
        "bad.json",
        r#"{"rktKind":"paths","rktVersion":"v1","data":"relative"}"#,
    );
    let out = w.rkt(&["config"]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(
        out.stderr.contains("bad.json") && out.stderr.contains("absolute"),
        "{out:?}"
    );
}

#[test]
fn auth_d_credentials_are_sent_to_their_host_only_and_never_printed() {
    if !require_root("auth_d_credentials_are_sent_to_their_host_only_and_never_printed") {
        return;
    }
    let w = World::new();
    let (aci, _) = w.signed_image("example.com/private", "private.aci", SIGNER);
    let server = Server::https(&w.pki);
    server.route("/private.aci", Reply::file(&aci));
    let auth = w.local_config().join("auth.d");
    std::fs::create_dir_all(&auth).unwrap();
    std::fs::write(
        auth.join("mine.json"),
        format!(r#"{{"rktKind":"auth","rktVersion":"v1","domains":["127.0.0.1:{}"],"type":"basic","credentials":{{"user":"alice","password":"s3cret-pw"}}}}"#, server.port()),
    )
    .unwrap();
    let out = w.rkt(&[
        "--debug",
        "--insecure-options=image",
        "fetch",
        &server.url("/private.aci"),
    ]);
    id_line(&out);
    let hit = &server.hits("/private.aci")[0];
    let header = hit
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone());
    // base64("alice:s3cret-pw")
    assert_eq!(header.as_deref(), Some("Basic YWxpY2U6czNjcmV0LXB3"));
    assert!(
        !out.stderr.contains("s3cret") && !out.stderr.contains("YWxpY2U6"),
        "{out:?}"
    );
    // Another host gets nothing.
    let other = Server::https(&w.pki);
    other.route("/private.aci", Reply::file(&aci));
    id_line(&w.rkt(&[
        "--insecure-options=image",
        "fetch",
        &other.url("/private.aci"),
    ]));
    assert!(other.hits("/private.aci")[0]
        .headers
        .iter()
        .all(|(k, _)| !k.eq_ignore_ascii_case("authorization")));
}

/// Stage1 images from HTTPS (`--stage1-url`, `stage1.d`'s location) are verified like any
/// image.
#[test]
fn remote_stage1_images_are_fetched_and_verified() {
    if !require_root("remote_stage1_images_are_fetched_and_verified") {
        return;
    }
    let w = World::new();
    let stage1 = w.env.work().join("stage1.aci");
    std::fs::copy(rkt_tests::env::stage1_aci(), &stage1).unwrap();
    let stage1_asc = w.env.work().join("stage1.aci.asc");
    w.gpg.sign(SIGNER, &stage1, &stage1_asc);
    let app = ImageSpec::shell("example.com/s1app", "echo from-remote-stage1");
    let app_aci = w.env.image(&app, "s1app.aci");
    w.gpg.sign(
        SIGNER,
        Path::new(&app_aci),
        &w.env.work().join("s1app.aci.asc"),
    );
    w.trust("example.com", SIGNER);
    let server = Server::https(&w.pki);
    let (s1, s1asc) = (
        std::fs::read(&stage1).unwrap(),
        std::fs::read(&stage1_asc).unwrap(),
    );
    for dir in ["/flag", "/config"] {
        server.route(&format!("{dir}/stage1.aci"), Reply::file(&s1));
        server.route(&format!("{dir}/stage1.aci.asc"), Reply::file(&s1asc));
    }
    let flag = format!("--stage1-url={}", server.url("/flag/stage1.aci"));

    // The stage1's signer is not trusted for its name yet.
    let out = w.rkt(&["run", &flag, &app_aci]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("stage1"), "{out:?}");
    assert!(out.stderr.contains("unknown entity"), "{out:?}");

    w.trust("coreos.com/rkt", SIGNER);
    let out = w.rkt(&["run", &flag, &app_aci]);
    assert!(out.ok().contains("from-remote-stage1"), "{out:?}");
    // Downloaded by the refused run too: an URL's name is known only from its manifest.
    assert_eq!(server.hits("/flag/stage1.aci").len(), 2);

    // stage1.d's location, when no flag is given.
    let stage1_d = w.local_config().join("stage1.d");
    std::fs::create_dir_all(&stage1_d).unwrap();
    std::fs::write(
        stage1_d.join("s.json"),
        format!(
            r#"{{"rktKind":"stage1","rktVersion":"v1","location":"{}"}}"#,
            server.url("/config/stage1.aci")
        ),
    )
    .unwrap();
    let out = w.rkt(&["run", &app_aci]);
    assert!(out.ok().contains("from-remote-stage1"), "{out:?}");
    assert_eq!(server.hits("/config/stage1.aci").len(), 1);
}

/// A server may answer 202 for the signature: it is fetched again after the image.
#[test]
fn a_deferred_signature_is_fetched_after_the_image() {
    if !require_root("a_deferred_signature_is_fetched_after_the_image") {
        return;
    }
    let w = World::new();
    let (aci, asc) = w.signed_image("example.com/deferred", "deferred.aci", SIGNER);
    w.trust("example.com/deferred", SIGNER);
    let server = Server::https(&w.pki);
    server.route("/deferred.aci", Reply::file(&aci));
    server.route(
        "/deferred.aci.asc",
        Reply::Once {
            first: Box::new(Reply::Status(202)),
            then: Box::new(Reply::file(&asc)),
        },
    );
    let out = w.rkt(&["fetch", &server.url("/deferred.aci")]);
    id_line(&out);
    assert!(
        out.stderr
            .contains("server requested deferring the signature download"),
        "{out:?}"
    );
    assert!(out.stderr.contains("signature verified"), "{out:?}");
    let statuses: Vec<u16> = server
        .hits("/deferred.aci.asc")
        .iter()
        .map(|h| h.status)
        .collect();
    assert_eq!(statuses, vec![202, 200]);
}

/// On a terminal: `rkt trust` asks to review the fingerprint, and downloads show progress.
#[test]
fn terminals_get_the_fingerprint_review_and_a_progress_bar() {
    if !require_root("terminals_get_the_fingerprint_review_and_a_progress_bar") {
        return;
    }
    let w = World::new();
    let key = w.key_file(SIGNER).display().to_string();
    let mut tty = OperatorTty::new(24, 120);
    let mut child = tty.spawn(w.cmd(&["trust", "--prefix=example.com/app", &key]));
    let wait = std::time::Duration::from_secs(20);
    assert!(
        tty.wait_for("Are you sure you want to trust this key (yes/no)?", wait),
        "{}",
        tty.screen()
    );
    assert!(
        tty.screen().contains("gpg key fingerprint is:"),
        "{}",
        tty.screen()
    );
    tty.type_in("maybe\n");
    assert!(
        tty.wait_for("Please enter 'yes' or 'no'", wait),
        "{}",
        tty.screen()
    );
    tty.type_in("yes\n");
    assert!(
        tty.wait_for("Added key for prefix \"example.com/app\"", wait),
        "{}",
        tty.screen()
    );
    assert!(child.wait().unwrap().success());
    let fp = w.gpg.fingerprint(SIGNER);
    assert!(w
        .local_config()
        .join("trustedkeys/prefix.d/example.com/app")
        .join(fp)
        .is_file());

    // "no" trusts nothing.
    let mut tty = OperatorTty::new(24, 120);
    let mut child = tty.spawn(w.cmd(&["trust", "--prefix=example.com/other", &key]));
    assert!(tty.wait_for("(yes/no)?", wait), "{}", tty.screen());
    tty.type_in("no\n");
    child.wait().unwrap();
    assert!(!w
        .local_config()
        .join("trustedkeys/prefix.d/example.com/other")
        .exists());

    // A download in progress draws its bar: name and bytes.
    let (aci, _) = w.signed_image("example.com/slow", "slow.aci", SIGNER);
    let server = Server::https(&w.pki);
    server.route(
        "/slow.aci",
        Reply::Stall {
            body: aci[..aci.len() / 2].to_vec(),
            claimed: aci.len(),
        },
    );
    let mut tty = OperatorTty::new(24, 120);
    let mut child = tty.spawn(w.cmd(&[
        "--insecure-options=image",
        "fetch",
        &server.url("/slow.aci"),
    ]));
    let shown = tty.wait_for("Downloading slow.aci", wait);
    // SAFETY: kill(2) on the PID of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(shown, "{}", tty.screen());
    assert_eq!(w.stored_images(), 0);
}
