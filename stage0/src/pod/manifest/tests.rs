use super::*;
use aci::isolator::{LINUX_CAPABILITIES_REMOVE_SET, LINUX_CAPABILITIES_RETAIN_SET};
use aci::schema::Isolator;

use super::isolators::capability_list;

#[test]
fn default_names_and_mount_paths() {
    assert_eq!(
        default_app_name("example.com/reduce-worker").unwrap(),
        "reduce-worker"
    );
    assert_eq!(default_app_name("coreos.com/etcd").unwrap(), "etcd");
    assert_eq!(default_app_name("example.com/My_App").unwrap(), "my-app");
}

fn mount(volume: &str, target: &str) -> MountArg {
    MountArg {
        volume: volume.into(),
        target: target.into(),
    }
}

#[test]
fn per_app_mounts_win_over_pod_wide_ones_on_the_same_path() {
    let app = [mount("a", "/var/log/")];
    let pod = [mount("b", "var/log"), mount("b", "/data")];
    let m = mounts(&app, &pod);
    assert_eq!(m.len(), 2, "a relative target is the same path: {m:?}");
    assert_eq!(m[0].volume, "a");
    assert_eq!(m[1].path, "/data");
}

fn key(c: char) -> ImageKey {
    ImageKey::parse(&format!("sha512-{}", c.to_string().repeat(64))).unwrap()
}

#[test]
fn environment_precedence_as_rkt_image_environment_inherit_file_set_env() {
    let manifest = ImageManifest {
        name: "example.com/env".into(),
        app: Some(App {
            exec: vec!["/env".into()],
            user: "0".into(),
            group: "0".into(),
            environment: vec![
                EnvVar {
                    name: "FROM_IMAGE".into(),
                    value: "image".into(),
                },
                EnvVar {
                    name: "SHARED".into(),
                    value: "image".into(),
                },
            ],
            ..App::default()
        }),
        ..ImageManifest::default()
    };
    let request = AppRequest {
        environment: vec!["PER_APP=1".into(), "SHARED=per-app".into()],
        ..AppRequest::new("example.com/env")
    };
    let pod = PodInputs {
        env: EnvLayers {
            inherited: vec![
                ("FROM_IMAGE".into(), "parent".into()),
                ("EXAMPLE_ENV".into(), "hello".into()),
            ],
            from_file: vec![("FILE".into(), "f".into())],
            explicit: vec![("SHARED".into(), "set-env".into())],
        },
        ..PodInputs::default()
    };
    let ra = ResolvedApp {
        request: &request,
        key: key('a'),
        manifest,
    };
    let pm = generate(&[ra], &pod, (0, 0)).unwrap();
    let env = &pm.apps[0].app.as_ref().unwrap().environment;
    let get = |n: &str| env.iter().find(|e| e.name == n).map(|e| e.value.clone());
    assert_eq!(get("FROM_IMAGE").as_deref(), Some("image"));
    assert_eq!(get("EXAMPLE_ENV").as_deref(), Some("hello"));
    assert_eq!(get("FILE").as_deref(), Some("f"));
    assert_eq!(get("PER_APP").as_deref(), Some("1"));
    assert_eq!(
        get("SHARED").as_deref(),
        Some("set-env"),
        "--set-env wins, as in rkt"
    );
    assert_eq!(pm.apps[0].name, "env");
    assert_eq!(pm.annotations[0].name, "coreos.com/rkt/stage1/mutable");
}

fn caps_image(isolators: &[(&str, &[&str])]) -> ImageManifest {
    ImageManifest {
        name: "example.com/caps".into(),
        app: Some(App {
            exec: vec!["/caps".into()],
            user: "0".into(),
            group: "0".into(),
            isolators: isolators
                .iter()
                .map(|(name, set)| Isolator {
                    name: name.to_string(),
                    value: serde_json::json!({ "set": set }),
                })
                .collect(),
            ..App::default()
        }),
        ..ImageManifest::default()
    }
}

fn generate_with(
    isolators: &[(&str, &[&str])],
    request: AppRequest,
    allow_image_caps: bool,
) -> Result<Vec<Isolator>> {
    let ra = ResolvedApp {
        request: &request,
        key: key('b'),
        manifest: caps_image(isolators),
    };
    let pod = PodInputs {
        allow_image_caps,
        ..PodInputs::default()
    };
    let pm = generate(&[ra], &pod, (0, 0))?;
    Ok(pm.apps[0].app.as_ref().unwrap().isolators.clone())
}

fn plain() -> AppRequest {
    AppRequest::new("example.com/caps")
}

fn retain(flag: &str, value: &str) -> AppRequest {
    AppRequest {
        caps_retain: Some((flag.into(), value.into())),
        ..plain()
    }
}

const RETAIN: &str = LINUX_CAPABILITIES_RETAIN_SET;
const REMOVE: &str = LINUX_CAPABILITIES_REMOVE_SET;

#[test]
fn an_image_may_only_narrow_the_default_capabilities() {
    let e = generate_with(
        &[(RETAIN, &["CAP_CHOWN", "CAP_DAC_READ_SEARCH"])],
        plain(),
        false,
    )
    .unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        "image \"example.com/caps\" asks for capabilities beyond rkt's default set: \
         CAP_DAC_READ_SEARCH; to grant them, add --caps-retain=CAP_CHOWN,CAP_DAC_READ_SEARCH \
         after the image (or run with --insecure-options=capabilities)"
    );
    // Narrowing is fine, and kept as the image wrote it.
    let narrowed = generate_with(&[(RETAIN, &["CAP_CHOWN", "CAP_KILL"])], plain(), false).unwrap();
    assert_eq!(
        narrowed[0].value["set"],
        serde_json::json!(["CAP_CHOWN", "CAP_KILL"])
    );
    assert!(generate_with(&[(REMOVE, &["CAP_SYS_ADMIN"])], plain(), false).is_ok());
    // Unknown names are not in the default set either.
    assert!(generate_with(&[(RETAIN, &["CAP_MADE_UP"])], plain(), false).is_err());
    // Every retain set counts, not just the one a runtime happens to read.
    assert!(generate_with(
        &[(RETAIN, &["CAP_SYS_ADMIN"]), (RETAIN, &["CAP_CHOWN"])],
        plain(),
        false
    )
    .is_err());
    // The operator's consent: --caps-retain, or no capability restriction at all, which is
    // then not recorded for a later run-prepared.
    let insecure = generate_with(&[(RETAIN, &["CAP_DAC_READ_SEARCH"])], plain(), true).unwrap();
    assert!(insecure.is_empty(), "{insecure:?}");
    let granted = generate_with(
        &[(RETAIN, &["CAP_DAC_READ_SEARCH"])],
        retain("caps-retain", "dac_read_search"),
        false,
    )
    .unwrap();
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0].name, RETAIN);
    assert_eq!(
        granted[0].value,
        serde_json::json!({"set": ["CAP_DAC_READ_SEARCH"]})
    );
}

#[test]
fn isolator_flags_replace_or_append_as_rkt_does() {
    let request = AppRequest {
        memory: Some("64M".into()),
        caps_remove: Some(("caps-remove".into(), "CAP_MKNOD,cap_kill,MKNOD".into())),
        cpu_shares: Some("2048".into()),
        oom_score_adj: Some("-100".into()),
        seccomp: Some("mode=remove,errno=EPERM,chmod,chown".into()),
        ..plain()
    };
    let iso = generate_with(
        &[(RETAIN, &["CAP_CHOWN"]), (REMOVE, &["CAP_KILL"])],
        request,
        false,
    )
    .unwrap();
    let names: Vec<&str> = iso.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "resource/memory",
            "os/linux/cpu-shares",
            "os/linux/oom-score-adj",
            "os/linux/seccomp-remove-set",
            REMOVE
        ]
    );
    assert_eq!(
        iso[4].value,
        serde_json::json!({"set": ["CAP_MKNOD", "CAP_KILL"]})
    );
    assert_eq!(
        iso[3].value,
        serde_json::json!({"set": ["chmod", "chown"], "errno": "EPERM"})
    );
    // The deprecated spelling is an alias: the request holds whichever came last.
    let iso = generate_with(&[], retain("cap-retain", "CAP_NET_ADMIN"), false).unwrap();
    assert_eq!(iso[0].value, serde_json::json!({"set": ["CAP_NET_ADMIN"]}));
    let both = AppRequest {
        caps_remove: Some(("cap-remove".into(), "CAP_KILL".into())),
        ..retain("caps-retain", "CAP_CHOWN")
    };
    let e = generate_with(&[], both, false).unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        "image example.com/caps: cannot use both --caps-retain and --caps-remove on the same image"
    );
    let e = generate_with(&[], retain("caps-retain", "CAP_CHOWN,CAP_NOPE"), false).unwrap_err();
    assert!(
        format!("{e:#}").contains("unknown capability \"CAP_NOPE\""),
        "{e:#}"
    );
    assert!(capability_list("caps-retain", "CAP_CHOWN,").is_err());
    let bad = AppRequest {
        seccomp: Some("chmod".into()),
        ..plain()
    };
    assert!(generate_with(&[], bad, false)
        .unwrap_err()
        .to_string()
        .contains("mode=retain"));
}
