//! The stages share names only through the contract (docs/stage-contract.md); each crate
//! spells them once in its own `contract` module. This checks that the spellings agree, by
//! reading those modules' sources (the stages are binaries: nothing to link against).
use std::collections::HashMap;
use std::path::Path;

/// `pub const NAME: &str = "value";` items of a source file.
fn constants(crate_dir: &str) -> HashMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("src/contract.rs");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (name, rest) = rest.split_once(": &str = \"")?;
            let value = rest.strip_suffix("\";")?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

fn get<'a>(map: &'a HashMap<String, String>, krate: &str, name: &str) -> &'a str {
    map.get(name)
        .unwrap_or_else(|| panic!("{krate}/src/contract.rs has no {name}"))
}

#[test]
fn stage0_and_stage1_name_the_pod_layout_alike() {
    let s0 = constants("stage0");
    let s1 = constants("stage1");
    for name in [
        "POD_MANIFEST",
        "STAGE1_ROOTFS",
        "STAGE2_DIR",
        "STATUS_DIR",
        "PID_FILE",
        "RKT_RESOLV_CONF",
        "RKT_HOSTS",
        "LOCK_FD_ENV",
        "STAGE1_TREE_ID",
        "OVERLAY_PREPARED",
        "NET_INFO",
    ] {
        assert_eq!(get(&s0, "stage0", name), get(&s1, "stage1", name), "{name}");
    }
}

#[test]
fn stage1_and_stage2_init_agree_on_the_plan_the_socket_and_the_status_files() {
    let s0 = constants("stage0");
    let s1 = constants("stage1");
    let init = constants("stage2-init");
    let rkt_dir = get(&init, "stage2-init", "DEFAULT_RKT_DIR").trim_start_matches('/');
    let under_rkt = |name: &str| format!("{rkt_dir}/{}", get(&init, "stage2-init", name));
    assert_eq!(
        get(&s1, "stage1", "PLAN_MAGIC"),
        get(&init, "stage2-init", "PLAN_MAGIC")
    );
    assert_eq!(
        format!("/{}", get(&s1, "stage1", "INIT_PLAN")),
        get(&init, "stage2-init", "DEFAULT_PLAN_PATH")
    );
    assert_eq!(get(&s1, "stage1", "STATUS_DIR"), under_rkt("STATUS_DIR"));
    assert_eq!(
        get(&s1, "stage1", "ENTER_SOCKET"),
        under_rkt("ENTER_SOCKET")
    );
    assert_eq!(
        get(&s1, "stage1", "ENTER_MAGIC"),
        get(&init, "stage2-init", "ENTER_MAGIC")
    );
    assert_eq!(
        get(&s0, "stage0", "SUPERVISOR_STATUS"),
        under_rkt("SUPERVISOR_STATUS")
    );
}

#[test]
fn the_stage1_image_names_the_entrypoints_stage0_looks_for() {
    let s0 = constants("stage0");
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../stage1/manifest.json.in"),
    )
    .expect("stage1/manifest.json.in");
    for name in [
        "ANN_RUN",
        "ANN_ENTER",
        "ANN_GC",
        "ANN_STOP",
        "ANN_INTERFACE_VERSION",
    ] {
        let annotation = get(&s0, "stage0", name);
        assert!(
            manifest.contains(&format!("\"{annotation}\"")),
            "stage1's manifest lacks {annotation}"
        );
    }
}

/// Every `docs/<file>.md, "Section"` the code cites names a document and a heading that exist.
#[test]
fn the_sections_the_code_cites_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cited = 0;
    let mut missing = Vec::new();
    let mut stack: Vec<std::path::PathBuf> =
        ["aci", "store", "stage0", "stage1", "stage2-init", "tests"]
            .iter()
            .map(|c| root.join(c))
            .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            // Comments wrap lines: join each file's lines before looking.
            let text = std::fs::read_to_string(&path).unwrap();
            let joined: String = text
                .lines()
                .map(|l| {
                    l.trim_start()
                        .trim_start_matches("//!")
                        .trim_start_matches("///")
                        .trim_start_matches("//")
                        .trim()
                })
                .collect::<Vec<_>>()
                .join(" ");
            for (at, _) in joined.match_indices("docs/") {
                let rest = &joined[at..];
                let Some(end) = rest.find(".md") else {
                    continue;
                };
                let doc = &rest[..end + 3];
                if doc.contains(' ') || doc.contains('<') {
                    continue;
                }
                let text = match std::fs::read_to_string(root.join(doc)) {
                    Ok(t) => t,
                    Err(_) => {
                        missing.push(format!("{}: {doc}", path.display()));
                        continue;
                    }
                };
                cited += 1;
                let after = &rest[end + 3..];
                if let Some(section) = after.strip_prefix(", \"").and_then(|s| s.split('"').next())
                {
                    let heading = text.lines().any(|l| {
                        l.starts_with('#')
                            && l.trim_start_matches('#')
                                .trim()
                                .trim_matches('`')
                                .starts_with(section)
                    });
                    if !heading {
                        missing.push(format!("{}: {doc} \"{section}\"", path.display()));
                    }
                }
            }
        }
    }
    assert!(cited > 20, "only {cited} citations found");
    assert!(missing.is_empty(), "cited but missing: {missing:#?}");
}
