//! `rkt image ...` subcommands against a real store.
use std::process::Command;

use aci::archive::Compression;
use rkt_tests::{require_root, ImageSpec, TestEnv};

fn sha512_of(path: &std::path::Path) -> String {
    let out = Command::new("sha512sum").arg(path).output().unwrap();
    format!(
        "sha512-{}",
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
    )
}

#[test]
fn image_list_shows_columns_and_formats() {
    if !require_root("image_list_shows_columns_and_formats") {
        return;
    }
    let env = TestEnv::new();
    let empty = env.rkt(&["image", "list"]);
    assert_eq!(empty.ok(), "ID\tNAME\tSIZE\tIMPORT TIME\tLAST USED\n");
    assert_eq!(env.rkt(&["image", "list", "--format=json"]).ok(), "null\n");
    let aci = env.image(
        &ImageSpec::shell("example.com/listed", "true"),
        "listed.aci",
    );
    let short = env.fetch(&aci);
    let out = env.rkt(&["image", "list"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(lines[0], "ID\t\t\tNAME\t\t\t\tSIZE\tIMPORT TIME\tLAST USED");
    let cells: Vec<&str> = lines[1].split('\t').filter(|c| !c.is_empty()).collect();
    assert_eq!(cells[0], &short[..19]);
    assert_eq!(cells[1], "example.com/listed:1.0.0");
    assert!(
        cells[2].ends_with("MiB") || cells[2].ends_with("KiB"),
        "{cells:?}"
    );
    assert!(cells[3].ends_with("ago") || cells[3] == "now", "{cells:?}");
    let full = env.rkt(&["image", "list", "--full", "--no-legend"]);
    assert!(full.ok().starts_with(&short), "{full:?}");
    let json: serde_json::Value =
        serde_json::from_str(env.rkt(&["image", "list", "--format=json"]).ok()).unwrap();
    assert_eq!(json[0]["name"], "example.com/listed:1.0.0");
    assert_eq!(json[0]["id"].as_str().unwrap().len(), 7 + 64);
    assert!(json[0]["import_time"].as_i64().unwrap() > 1_000_000_000_000_000_000);
    let fields = env.rkt(&["image", "list", "--no-legend", "--fields=name,id", "--full"]);
    assert!(
        fields.ok().starts_with("example.com/listed:1.0.0\t"),
        "{fields:?}"
    );
    let bad = env.rkt(&["image", "list", "--fields=nope"]);
    assert_eq!(bad.code, 254, "{bad:?}");
}

#[test]
fn cat_manifest_export_extract_render() {
    if !require_root("cat_manifest_export_extract_render") {
        return;
    }
    let env = TestEnv::new();
    let spec =
        ImageSpec::shell("example.com/exported", "true").file("data/hello.txt", 0o640, b"hello\n");
    let aci = env.image(&spec.clone().compression(Compression::None), "plain.aci");
    let gz = env.image(&spec.compression(Compression::Gzip), "gz.aci");
    let id = env.fetch(&gz);

    let pretty = env.rkt(&["image", "cat-manifest", "example.com/exported:1.0.0"]);
    let value: serde_json::Value = serde_json::from_str(pretty.ok()).unwrap();
    assert_eq!(value["name"], "example.com/exported");
    assert!(pretty.stdout.contains("\n\t\"acKind\""), "{pretty:?}");
    let compact = env.rkt(&["image", "cat-manifest", "--pretty-print=false", &id]);
    assert_eq!(compact.ok().lines().count(), 1);

    // Export is the uncompressed ACI: byte-identical to the plain file, hashing to the ID.
    let out = env.work().join("out.aci");
    env.rkt(&["image", "export", &id, out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&aci).unwrap());
    assert!(sha512_of(&out).starts_with(&id));
    let again = env.rkt(&["image", "export", &id, out.to_str().unwrap()]);
    assert_eq!(again.code, 254);
    assert!(
        again.stderr.contains("exists (try --overwrite)"),
        "{again:?}"
    );
    env.rkt(&["image", "export", "--overwrite", &id, out.to_str().unwrap()])
        .ok();

    let ex = env.work().join("extracted");
    env.rkt(&["image", "extract", &id, ex.to_str().unwrap()])
        .ok();
    assert!(ex.join("manifest").is_file());
    assert_eq!(
        std::fs::read(ex.join("rootfs/data/hello.txt")).unwrap(),
        b"hello\n"
    );
    let exists = env.rkt(&["image", "extract", &id, ex.to_str().unwrap()]);
    assert_eq!(exists.code, 254);
    assert_eq!(
        exists.stderr,
        "extract: output directory exists (try --overwrite)\n"
    );
    let only = env.work().join("rootfs-only");
    env.rkt(&[
        "image",
        "render",
        "--rootfs-only",
        &id,
        only.to_str().unwrap(),
    ])
    .ok();
    assert!(only.join("bin/busybox").is_file());
    assert!(!only.join("manifest").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(only.join("data/hello.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[test]
fn image_rm_gc_and_unknown_images() {
    if !require_root("image_rm_gc_and_unknown_images") {
        return;
    }
    let env = TestEnv::new();
    let a = env.fetch(&env.image(&ImageSpec::shell("example.com/one", "true"), "one.aci"));
    env.fetch(&env.image(&ImageSpec::shell("example.com/two", "true"), "two.aci"));
    let unknown = env.rkt(&["image", "cat-manifest", "example.com/nope"]);
    assert_eq!(unknown.code, 254);
    assert!(
        unknown
            .stderr
            .contains("cannot find aci satisfying name: \"example.com/nope\""),
        "{unknown:?}"
    );
    let ambiguous = env.rkt(&["image", "cat-manifest", "sha512-"]);
    assert_eq!(ambiguous.code, 254, "{ambiguous:?}");

    let rm = env.rkt(&["image", "rm", &a]);
    assert!(
        rm.ok()
            .starts_with("successfully removed aci for image: \"sha512-"),
        "{rm:?}"
    );
    assert_eq!(rm.stderr, "rm: 1 image(s) successfully removed\n");
    let names = env.rkt(&["image", "list", "--no-legend", "--fields=name"]);
    assert_eq!(names.ok().trim(), "example.com/two:1.0.0");

    let gc = env.rkt(&["image", "gc", "--grace-period=0s"]);
    gc.ok();
    assert_eq!(env.rkt(&["image", "list", "--no-legend"]).ok(), "\n");
    assert!(std::fs::read_dir(env.data_dir().join("cas/tree"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn image_verify_detects_and_repairs_a_changed_tree() {
    if !require_root("image_verify_detects_and_repairs_a_changed_tree") {
        return;
    }
    let env = TestEnv::new();
    let id = env.fetch(&env.image(&ImageSpec::shell("example.com/verified", "true"), "v.aci"));
    let ok = env.rkt(&["image", "verify", &id]);
    assert!(
        ok.ok()
            .starts_with("successfully verified checksum for image"),
        "{ok:?}"
    );
    // Tamper with the rendered tree.
    let tree = std::fs::read_dir(env.data_dir().join("cas/tree"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(tree.join("rootfs/etc/passwd"), "evil::0:0::/:/bin/sh\n").unwrap();
    let repaired = env.rkt(&["image", "verify", &id]);
    assert!(
        repaired.ok().contains("tree cache verification failed"),
        "{repaired:?}"
    );
    let content = std::fs::read_to_string(
        std::fs::read_dir(env.data_dir().join("cas/tree"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
            .join("rootfs/etc/passwd"),
    )
    .unwrap();
    assert!(content.starts_with("root:x:0:0"), "{content}");
}

#[test]
fn version_output_for_schedulers() {
    if !require_root("version_output_for_schedulers") {
        return;
    }
    let env = TestEnv::new();
    let v = env.rkt(&["version"]);
    let lines: Vec<&str> = v.ok().lines().collect();
    assert_eq!(lines[0], "rkt Version: 1.30.0");
    assert_eq!(lines[1], "appc Version: 0.8.11");
    assert!(lines.iter().any(|l| l.starts_with("Features:")));
}
