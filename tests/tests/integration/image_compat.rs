//! Behaviour of the image commands that real rkt 1.30 shows and its functional tests match:
//! SIZE in `rkt image list`, the `--full` table, import times of re-fetched images, and the
//! phrases of user, group and image ID errors.
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aci::archive::Compression;
use rkt_tests::{require_root, ImageSpec, TestEnv};

/// rkt's `fileutil.DirSize`: the `st_size` of every entry under `path` and of `path` itself,
/// directories and symlinks included, a file with several hard links once.
fn dir_size(path: &Path, linked: &mut HashSet<u64>) -> u64 {
    let meta = std::fs::symlink_metadata(path).unwrap();
    let mut total = 0;
    if meta.is_dir() || meta.nlink() == 1 || linked.insert(meta.ino()) {
        total += meta.len();
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            total += dir_size(&entry.unwrap().path(), linked);
        }
    }
    total
}

/// The tree store directories rendered for the image named `name` (their `manifest` is the
/// image's, as in rkt's tree store).
fn trees_of(env: &TestEnv, name: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(env.data_dir().join("cas/tree")) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|dir| {
            std::fs::read(dir.join("manifest"))
                .ok()
                .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
                .is_some_and(|m| m["name"] == name)
        })
        .collect()
}

fn tree_size_of(env: &TestEnv, name: &str) -> u64 {
    let trees = trees_of(env, name);
    assert_eq!(trees.len(), 1, "trees of {name}: {trees:?}");
    dir_size(&trees[0], &mut HashSet::new())
}

/// The full image ID starting with `short`, from `rkt image list --full`.
fn full_id(env: &TestEnv, short: &str) -> String {
    let out = env.rkt(&["image", "list", "--no-legend", "--full", "--fields=id"]);
    out.ok()
        .lines()
        .find(|l| l.starts_with(short))
        .unwrap_or_else(|| panic!("{short} not listed: {out:?}"))
        .trim()
        .to_string()
}

/// The SIZE column of `rkt image list --full` for the image whose ID starts with `short`.
fn listed_size(env: &TestEnv, short: &str) -> u64 {
    let out = env.rkt(&["image", "list", "--no-legend", "--full", "--fields=id,size"]);
    let line = out
        .ok()
        .lines()
        .find(|l| l.starts_with(short))
        .unwrap_or_else(|| panic!("{short} not listed: {out:?}"));
    let cells: Vec<&str> = line.split('\t').filter(|c| !c.is_empty()).collect();
    cells[1]
        .parse()
        .unwrap_or_else(|_| panic!("SIZE {:?} in {line:?}", cells[1]))
}

/// The uncompressed ACI's size: what `rkt image export` writes, and what rkt stores.
fn tar_size(env: &TestEnv, id: &str) -> u64 {
    let out = env.work().join(format!("{id}.tar"));
    env.rkt(&["image", "export", "--overwrite", id, out.to_str().unwrap()])
        .ok();
    std::fs::metadata(&out).unwrap().len()
}

#[test]
fn image_list_size_is_the_uncompressed_aci_plus_its_tree() {
    if !require_root("image_list_size_is_the_uncompressed_aci_plus_its_tree") {
        return;
    }
    let env = TestEnv::new();
    let spec = ImageSpec::shell("example.com/sized", "true")
        .file("data/blob", 0o644, &[42u8; 100_000])
        .compression(Compression::Gzip);
    let aci = env.image(&spec, "sized.aci");
    let id = env.fetch(&aci);
    let tar = tar_size(&env, &id);
    assert!(
        tar > std::fs::metadata(&aci).unwrap().len(),
        "the ACI counts uncompressed"
    );
    // rkt renders the tree store at fetch (as root with overlay), and counts it in.
    let tree = tree_size_of(&env, "example.com/sized");
    assert_eq!(listed_size(&env, &id), tar + tree);
    let json: serde_json::Value =
        serde_json::from_str(env.rkt(&["image", "list", "--format=json"]).ok()).unwrap();
    assert_eq!(json[0]["size"].as_u64(), Some(tar + tree));
}

#[test]
fn image_gc_removes_unused_trees_and_size_drops_to_the_aci() {
    if !require_root("image_gc_removes_unused_trees_and_size_drops_to_the_aci") {
        return;
    }
    let env = TestEnv::new();
    let name = "example.com/collected";
    let id = env.fetch(&env.image(&ImageSpec::shell(name, "true"), "collected.aci"));
    let tar = tar_size(&env, &id);
    let rendered = tar + tree_size_of(&env, name);
    assert_eq!(listed_size(&env, &id), rendered);

    let run = env.run(&[&id]);
    assert_eq!(run.code, 0, "{run:?}");
    // The exited pod still uses the tree: image gc keeps it.
    env.rkt(&["image", "gc"]).ok();
    assert_eq!(listed_size(&env, &id), rendered);

    env.rkt(&["gc", "--grace-period=0s"]).ok();
    env.rkt(&["image", "gc"]).ok();
    assert!(trees_of(&env, name).is_empty(), "the tree was not removed");
    assert_eq!(listed_size(&env, &id), tar);

    // Running it again renders the tree again, and SIZE counts it again.
    let run = env.run(&[&id]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(listed_size(&env, &id), tar + tree_size_of(&env, name));
}

/// Rewrites an image's import and last-used times in its store record, so that the table's
/// widths are known.
fn set_times(env: &TestEnv, full_id: &str, nanos: i64) {
    let path = env
        .data_dir()
        .join("cas/image")
        .join(full_id)
        .join("info.json");
    let mut info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    info["importTime"] = nanos.into();
    info["lastUsed"] = nanos.into();
    std::fs::write(&path, serde_json::to_vec(&info).unwrap()).unwrap();
}

/// Go's tabwriter as rkt sets it up (tab width 8, padding 1, padded with tabs): the tabs after
/// a cell of `text` characters in a column whose widest cell has `widest`.
fn pad(text: usize, widest: usize) -> String {
    let column = (widest + 1).div_ceil(8) * 8;
    "\t".repeat((column - text).div_ceil(8))
}

#[test]
fn full_table_pads_like_rkt() {
    if !require_root("full_table_pads_like_rkt") {
        return;
    }
    let env = TestEnv::new();
    let name = "example.com/full-table";
    let short = env.fetch(&env.image(&ImageSpec::shell(name, "true"), "full.aci"));
    let id = full_id(&env, &short);
    let size = listed_size(&env, &short).to_string();
    let list = || {
        let mut cmd = env.cmd(&["image", "list", "--full"]);
        cmd.env("TZ", "UTC");
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let display = format!("{name}:1.0.0");
    let expected = |time: &str| {
        format!(
            "ID{}NAME{}SIZE{}IMPORT TIME{}LAST USED\n{id}{}{display}{}{size}{}{time}{}{time}\n",
            pad(2, id.len()),
            pad(4, display.len()),
            pad(4, size.len()),
            pad(11, time.len()),
            pad(id.len(), id.len()),
            pad(display.len(), display.len()),
            pad(size.len(), size.len()),
            pad(time.len(), time.len()),
        )
    };
    // Go's layout "2006-01-02 15:04:05.999 -0700 MST" drops a zero fraction: the IMPORT TIME
    // column is 32 wide then (three tabs after the header) and 40 with milliseconds (four).
    set_times(&env, &id, 1_700_000_000_000_000_000);
    let whole = list();
    assert_eq!(whole, expected("2023-11-14 22:13:20 +0000 UTC"));
    assert!(
        whole.contains("\tIMPORT TIME\t\t\tLAST USED\n"),
        "{whole:?}"
    );
    set_times(&env, &id, 1_700_000_000_120_999_999);
    let millis = list();
    assert_eq!(millis, expected("2023-11-14 22:13:20.12 +0000 UTC"));
    set_times(&env, &id, 1_700_000_000_123_000_000);
    let millis = list();
    assert_eq!(millis, expected("2023-11-14 22:13:20.123 +0000 UTC"));
    assert!(
        millis.contains("\tIMPORT TIME\t\t\t\tLAST USED\n"),
        "{millis:?}"
    );
    assert!(millis.starts_with(&format!("ID{}NAME", "\t".repeat(9))));
}

#[test]
fn fetching_again_refreshes_the_import_time() {
    if !require_root("fetching_again_refreshes_the_import_time") {
        return;
    }
    let env = TestEnv::new();
    let first = env.image(&ImageSpec::shell("example.com/first", "true"), "first.aci");
    let second = env.image(
        &ImageSpec::shell("example.com/second", "true"),
        "second.aci",
    );
    env.fetch(&first);
    env.fetch(&second);
    let listed = |env: &TestEnv| -> Vec<(String, i64, i64)> {
        let out = env.rkt(&["image", "list", "--format=json"]);
        let json: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().unwrap().to_string(),
                    i["import_time"].as_i64().unwrap(),
                    i["last_used_time"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let before = listed(&env);
    let names: Vec<&str> = before.iter().map(|i| i.0.as_str()).collect();
    assert_eq!(
        names,
        ["example.com/first:1.0.0", "example.com/second:1.0.0"]
    );

    env.fetch(&first);
    let after = listed(&env);
    // Sorted by import time: the image fetched again comes last now.
    let names: Vec<&str> = after.iter().map(|i| i.0.as_str()).collect();
    assert_eq!(
        names,
        ["example.com/second:1.0.0", "example.com/first:1.0.0"]
    );
    assert!(after[1].1 > before[1].1, "{before:?} {after:?}");
    assert_eq!(after[1].2, after[1].1, "last used is the new import time");
    assert_eq!(after[0], before[1], "the other image is untouched");
}

#[test]
fn unknown_user_and_group_use_rkts_phrases() {
    if !require_root("unknown_user_and_group_use_rkts_phrases") {
        return;
    }
    let env = TestEnv::new();
    let user = env.image(
        &ImageSpec::shell("example.com/user2", "id").user("user2", "0"),
        "user2.aci",
    );
    let out = env.run(&[&user]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("\"user2\" user not found"), "{out:?}");
    let group = env.image(
        &ImageSpec::shell("example.com/group2", "id").user("0", "group2"),
        "group2.aci",
    );
    let out = env.run(&[&group]);
    assert_eq!(out.code, 254, "{out:?}");
    assert!(out.stderr.contains("\"group2\" group not found"), "{out:?}");
}

#[test]
fn image_ids_need_two_digits() {
    if !require_root("image_ids_need_two_digits") {
        return;
    }
    let env = TestEnv::new();
    let id = env.fetch(&env.image(&ImageSpec::shell("example.com/short", "true"), "short.aci"));
    // rkt's minimum is "sha512-" and two characters: those resolve (checked before anything
    // else is in the store, so that two digits are unambiguous).
    let two = &id[..9];
    let manifest = env.rkt(&["image", "cat-manifest", two]);
    assert!(manifest.ok().contains("example.com/short"), "{manifest:?}");

    let out = env.work().join("out");
    let out = out.to_str().unwrap();
    for short in ["sha512-", &id[..8]] {
        let stage1_hash = format!("--stage1-hash={short}");
        for args in [
            &["image", "cat-manifest", short][..],
            &["image", "export", short, out],
            &["image", "extract", short, out],
            &["image", "render", short, out],
            &["image", "verify", short],
            &["--insecure-options=image", "prepare", short],
            &["--insecure-options=image", "run", short],
            &["--insecure-options=image", "run", &stage1_hash, &id],
        ] {
            let r = env.rkt(args);
            assert_eq!(r.code, 254, "{args:?}: {r:?}");
            assert!(r.stderr.contains("image ID too short"), "{args:?}: {r:?}");
        }
        // rkt image rm reports images it cannot resolve and exits 0 when nothing failed to
        // be removed, as rkt does.
        let rm = env.rkt(&["image", "rm", short]);
        assert_eq!(rm.code, 0, "{rm:?}");
        assert!(rm.stderr.contains("image ID too short"), "{rm:?}");
    }
    env.rkt(&["image", "cat-manifest", &id]).ok();
}
