use super::*;

fn entries(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn net_modes_as_rkt_parsed_them() {
    let default = parse_mode(&[]).unwrap();
    assert_eq!(
        default,
        NetMode::Contained(NetList {
            all: false,
            named: vec![("default".into(), String::new())]
        })
    );
    assert_eq!(parse_mode(&entries(&["host"])).unwrap(), NetMode::Host);
    assert_eq!(parse_mode(&entries(&["none"])).unwrap(), NetMode::None);
    let NetMode::Contained(l) =
        parse_mode(&entries(&["default:IP=172.16.28.50", "mynet"])).unwrap()
    else {
        panic!("not contained")
    };
    assert_eq!(l.args("default"), "IP=172.16.28.50");
    assert_eq!(l.args("mynet"), "");
    assert!(parse_mode(&entries(&["all"])).is_ok());
    for bad in [
        &["host", "default"][..],
        &["default", "default"],
        &[""],
        &["host:x=1"],
        &["all:x=1"],
        &["a:b:c"],
    ] {
        assert!(parse_mode(&entries(bad)).is_err(), "{bad:?}");
    }
}

fn list(names: &[&str]) -> NetList {
    NetList {
        all: false,
        named: names
            .iter()
            .map(|n| (n.to_string(), String::new()))
            .collect(),
    }
}

fn write(dir: &Path, file: &str, name: &str, plugin: &str) {
    std::fs::write(
        dir.join(file),
        format!(r#"{{"cniVersion":"0.1.0","name":"{name}","type":"{plugin}"}}"#),
    )
    .unwrap();
}

#[test]
fn user_confs_in_file_order_override_builtins() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "10-b.conf", "b", "bridge");
    write(dir.path(), "20-a.conf", "a", "bridge");
    write(dir.path(), "30-a.conf", "a", "macvlan");
    write(dir.path(), "05-default.conf", "default", "bridge");
    std::fs::write(dir.path().join("notes.txt"), "not a conf").unwrap();
    let mut warnings = Vec::new();
    let confs = load(&list(&["a", "b", "default"]), dir.path(), &mut |w| {
        warnings.push(w)
    })
    .unwrap();
    let names: Vec<_> = confs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["default", "b", "a"]);
    assert_eq!(confs[0].plugin, "bridge");
    assert_eq!(confs[2].plugin, "bridge", "the first file of a name wins");
    assert_eq!(warnings.len(), 2, "{warnings:?}");

    let all = load(
        &NetList {
            all: true,
            named: vec![],
        },
        dir.path(),
        &mut |_| {},
    )
    .unwrap();
    let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["default", "b", "a", "default-restricted"]);
}

#[test]
fn builtins_without_user_confs() {
    let confs = load(
        &list(&["default-restricted"]),
        Path::new("/nonexistent/net.d"),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(confs.len(), 1);
    assert!(!confs[0].ip_masq);
    let confs = load(&list(&["default"]), Path::new("/nonexistent"), &mut |_| {}).unwrap();
    assert!(confs[0].ip_masq);
    assert_eq!(confs[0].plugin, "ptp");
}

#[test]
fn bad_confs_and_unknown_names_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&list(&["nope"]), dir.path(), &mut |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("networks not found: nope"),
        "{err}"
    );
    std::fs::write(dir.path().join("50-bad.conf"), "{not json").unwrap();
    let err = load(&list(&["default"]), dir.path(), &mut |_| {}).unwrap_err();
    assert!(format!("{err:#}").contains("50-bad.conf"), "{err:#}");
    std::fs::write(
        dir.path().join("50-bad.conf"),
        r#"{"name":"x","type":"../../bin/sh"}"#,
    )
    .unwrap();
    assert!(load(&list(&["x"]), dir.path(), &mut |_| {}).is_err());
}
