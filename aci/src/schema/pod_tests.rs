use super::*;

const ID: &str = "sha512-0123456789abcdef";

fn pod_json(apps: &str, volumes: &str) -> String {
    format!(
        r#"{{"acVersion":"0.8.11","acKind":"PodManifest","apps":{apps},"volumes":{volumes},
            "isolators":null,"annotations":null,"ports":null}}"#
    )
}

fn app_json(name: &str, extra: &str) -> String {
    format!(r#"{{"name":"{name}","image":{{"id":"{ID}","name":"example.com/a"}}{extra}}}"#)
}

fn reject(json: &str) -> String {
    PodManifest::from_slice(json.as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn reads_rkt_style_pod_manifest() {
    let json = pod_json(
        &format!(
            "[{}]",
            app_json(
                "web",
                r#","app":{"exec":["/bin/sh"],"user":"0","group":"0"},"readOnlyRootFS":true,
                   "mounts":[{"volume":"data","path":"/data"},
                             {"volume":"own","path":"/own","appVolume":{"name":"own","kind":"empty"}}],
                   "annotations":[{"name":"coreos.com/rkt/stage1/app-hash","value":"x"}]"#
            )
        ),
        r#"[{"name":"data","kind":"host","source":"/srv","readOnly":true},{"name":"tmp","kind":"empty"}]"#,
    );
    let pm = PodManifest::from_slice(json.as_bytes()).unwrap();
    assert_eq!(pm.apps.len(), 1);
    let ra = pm.app("web").unwrap();
    assert!(ra.read_only_root_fs);
    assert_eq!(ra.image.name.as_deref(), Some("example.com/a"));
    let own = ra.mounts[1].app_volume.as_ref().unwrap();
    assert_eq!(own.mode.as_deref(), Some("0755"), "defaults filled in");
    let tmp = pm.volume("tmp").unwrap();
    assert_eq!(
        (tmp.uid, tmp.gid, tmp.mode_bits()),
        (Some(0), Some(0), 0o755)
    );
    assert_eq!(pm.volume("data").unwrap().read_only, Some(true));
    assert!(pm.isolators.is_empty() && pm.ports.is_empty());

    let out = String::from_utf8(pm.to_json()).unwrap();
    assert!(out.starts_with(r#"{"acVersion":"0.8.11","acKind":"PodManifest","apps":[{"name":"web","image":{"name":"example.com/a","id":"sha512-"#), "{out}");
    assert!(out.contains(r#""readOnlyRootFS":true"#));
    assert!(
        out.ends_with(r#""isolators":null,"annotations":null,"ports":null}"#),
        "null stays null: {out}"
    );
    assert_eq!(PodManifest::from_slice(out.as_bytes()).unwrap(), pm);
    let empty = json.replace(r#""ports":null"#, r#""ports":[]"#);
    let empty = PodManifest::from_slice(empty.as_bytes()).unwrap();
    let out_empty = String::from_utf8(empty.to_json()).unwrap();
    assert!(
        out_empty.ends_with(r#""isolators":null,"annotations":null,"ports":[]}"#),
        "[] stays []: {out_empty}"
    );
    assert_ne!(empty, pm, "null and [] are different manifests");
    assert_eq!(PodManifest::from_slice(&pm.to_json_pretty()).unwrap(), pm);
}

#[test]
fn new_pod_round_trips() {
    let mut pm = PodManifest::new();
    pm.ports.push(ExposedPort {
        name: "http".into(),
        host_port: 8080,
        host_ip: Some("127.0.0.1".into()),
        pod_port: None,
    });
    pm.user_labels.insert("k".into(), "v".into());
    pm.validate().unwrap();
    let again = PodManifest::from_slice(&pm.to_json()).unwrap();
    assert_eq!(again, pm);
    assert!(String::from_utf8(pm.to_json())
        .unwrap()
        .contains(r#""hostIP":"127.0.0.1""#));
}

#[test]
fn pod_rejections() {
    let one = |extra: &str| pod_json(&format!("[{}]", app_json("a", extra)), "[]");
    assert!(reject(&pod_json(
        &format!("[{},{}]", app_json("a", ""), app_json("a", "")),
        "[]"
    ))
    .starts_with("duplicate apps name \"a\""));
    assert!(reject(&pod_json(&format!("[{}]", app_json("A", "")), "[]")).contains("\"A\""));
    assert!(
        reject(&pod_json(r#"[{"name":"a","image":{}}]"#, "[]")).contains("image id must be set")
    );
    assert!(reject(&pod_json(
        r#"[{"name":"a","image":{"id":"sha1-00"}}]"#,
        "[]"
    ))
    .contains("\"sha1-00\""));
    assert!(reject(&pod_json(
        "[]",
        r#"[{"name":"v","kind":"empty"},{"name":"v","kind":"empty"}]"#
    ))
    .starts_with("duplicate volumes name \"v\""));
    assert!(reject(&pod_json("[]", r#"[{"name":"v","kind":"nfs"}]"#)).contains("\"nfs\""));
    assert!(reject(&pod_json(
        "[]",
        r#"[{"name":"v","kind":"host","source":"rel"}]"#
    ))
    .contains("\"rel\""));
    assert!(
        reject(&pod_json("[]", r#"[{"name":"v","kind":"host"}]"#)).contains("source must be set")
    );
    assert!(
        reject(&one(r#","mounts":[{"volume":"missing","path":"/m"}]"#)).contains("\"missing\"")
    );
    assert!(reject(&one(r#","mounts":[{"volume":"v","path":""}]"#)).contains("path must be set"));
    assert!(reject(&one(r#","app":{"user":"0"}"#)).contains("group must be set"));
    assert!(
        reject(r#"{"acVersion":"0.8.11","acKind":"ImageManifest"}"#).contains("\"ImageManifest\"")
    );
    assert!(reject(r#"{"acVersion":"0.8.11","acKind":"PodManifest","ports":[{"name":"p","hostPort":1,"hostIP":"nope"}]}"#).contains("\"nope\""));
}

#[test]
fn volume_flags() {
    let v =
        Volume::from_flag("data,kind=host,source=/srv/data,readOnly=true,recursive=false").unwrap();
    assert_eq!(v.name, "data");
    assert_eq!(v.kind, "host");
    assert_eq!(v.source.as_deref(), Some("/srv/data"));
    assert_eq!((v.read_only, v.recursive), (Some(true), Some(false)));
    assert_eq!((v.mode.as_deref(), v.uid, v.gid), (None, None, None));

    let v = Volume::from_flag("tmp,kind=empty").unwrap();
    assert_eq!(
        (v.mode.as_deref(), v.uid, v.gid),
        (Some("0755"), Some(0), Some(0))
    );
    let v = Volume::from_flag("tmp,kind=empty,mode=1777,uid=1000,GID=5,readonly=0").unwrap();
    assert_eq!(
        (v.mode_bits(), v.uid, v.gid, v.read_only),
        (0o1777, Some(1000), Some(5), Some(false))
    );

    for (flag, needle) in [
        ("data,kind=host,source=/x,color=red", "\"color\""),
        ("data,source=/x", "volume \"data\" kind must be set"),
        ("data,kind=host,source=rel", "\"rel\""),
        ("data,kind=host", "volume \"data\" source must be set"),
        ("data,kind=empty,mode=999", "mode \"999\""),
        ("data,kind=empty,mode=17777", "\"17777\""),
        ("data,kind=empty,mode=rwx", "\"rwx\""),
        ("data,kind=host,source=/x,readOnly=yes", "readOnly \"yes\""),
        ("data,kind=empty,uid=-1", "uid \"-1\""),
        ("data,kind=host,source=/x,mode=0700", "volume \"data\" mode"),
        ("data,kind=host,source=/x,kind=empty", "duplicate"),
        ("data,kind", "\"kind\""),
        ("Data,kind=empty", "\"Data\""),
        ("data,name=x,kind=empty", "duplicate"),
        ("data,kind=tmpfs", "\"tmpfs\""),
    ] {
        let err = Volume::from_flag(flag).expect_err(flag).to_string();
        assert!(err.contains(needle), "{flag}: {err}");
    }
}

/// What `rkt run --memory=128M IMAGE` writes: Go nil slices as `null` and the isolator's keys
/// in appc's struct order, not sorted.
#[test]
fn generated_pod_manifest_matches_rkt_text() {
    let mut app = App {
        exec: vec!["/bin/sh".into()],
        user: "0".into(),
        group: "0".into(),
        ..App::default()
    };
    app.isolators
        .push(crate::isolator::resource(crate::isolator::RESOURCE_MEMORY, None, "128M").unwrap());
    let mut pm = PodManifest::new();
    pm.apps.push(RuntimeApp {
        name: "sh".into(),
        image: RuntimeImage {
            name: Some("example.com/sh".into()),
            id: ID.into(),
            labels: Vec::new(),
        },
        app: Some(app),
        ..RuntimeApp::default()
    });
    pm.annotations.push(Annotation {
        name: "coreos.com/rkt/stage1/mutable".into(),
        value: "false".into(),
    });
    let expected = concat!(
        r#"{"acVersion":"0.8.11","acKind":"PodManifest","apps":[{"name":"sh","#,
        r#""image":{"name":"example.com/sh","id":"sha512-0123456789abcdef"},"#,
        r#""app":{"exec":["/bin/sh"],"user":"0","group":"0","isolators":[{"name":"resource/memory","#,
        r#""value":{"default":false,"request":"128M","limit":"128M"}}]}}],"#,
        r#""volumes":null,"isolators":null,"#,
        r#""annotations":[{"name":"coreos.com/rkt/stage1/mutable","value":"false"}],"#,
        r#""ports":null}"#,
    );
    assert_eq!(String::from_utf8(pm.to_json()).unwrap(), expected);
    let pretty = String::from_utf8(pm.to_json_pretty()).unwrap();
    assert!(
        pretty.contains(
            "\"value\": {\n\t\t\t\t\t\t\t\"default\": false,\n\t\t\t\t\t\t\t\"request\": \"128M\",\n\t\t\t\t\t\t\t\"limit\": \"128M\"\n"
        ),
        "{pretty}"
    );
    assert!(
        pretty.ends_with("\t\"ports\": null\n}") && pretty.contains("\n\t\"volumes\": null,\n"),
        "{pretty}"
    );

    // Reading and writing again keeps the text, including the order of isolator keys.
    let again = PodManifest::from_slice(expected.as_bytes()).unwrap();
    assert_eq!(again, pm);
    assert_eq!(String::from_utf8(again.to_json()).unwrap(), expected);
    assert_eq!(PodManifest::from_slice(&pm.to_json_pretty()).unwrap(), pm);
}

#[test]
fn isolator_values_keep_their_key_order() {
    let json = pod_json(
        "[]",
        r#"[{"name":"v","kind":"empty","mode":"0700"}]"#,
    )
    .replace(
        r#""isolators":null"#,
        r#""isolators":[{"name":"resource/cpu","value":{"limit":"1","request":"500m","default":false}}]"#,
    );
    let pm = PodManifest::from_slice(json.as_bytes()).unwrap();
    let out = String::from_utf8(pm.to_json()).unwrap();
    assert!(
        out.contains(r#""value":{"limit":"1","request":"500m","default":false}"#),
        "{out}"
    );
    assert!(
        out.contains(r#""volumes":[{"name":"v","kind":"empty","mode":"0700","uid":0,"gid":0}]"#),
        "{out}"
    );
    assert!(
        out.ends_with(r#""annotations":null,"ports":null}"#),
        "{out}"
    );
}
