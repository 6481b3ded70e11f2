use serde_json::json;

use super::*;

fn iso(name: &str, value: Value) -> Isolator {
    Isolator {
        name: name.to_string(),
        value,
    }
}

fn err(name: &str, value: Value) -> String {
    validate(&iso(name, value)).unwrap_err().to_string()
}

#[test]
fn resources() {
    let cpu = iso(RESOURCE_CPU, json!({"request": "250m", "limit": "500m"}));
    assert_eq!(cpu_limit_milli(&cpu).unwrap(), Some(500));
    assert_eq!(memory_limit_bytes(&cpu).unwrap(), None);
    let mem = iso(RESOURCE_MEMORY, json!({"Limit": "1Gi", "request": null}));
    assert_eq!(memory_limit_bytes(&mem).unwrap(), Some(1 << 30));
    let numeric = iso(RESOURCE_MEMORY, json!({"limit": 5000000}));
    assert_eq!(memory_limit_bytes(&numeric).unwrap(), Some(5_000_000));
    let no_limit = iso(RESOURCE_CPU, json!({"request": "1"}));
    assert_eq!(cpu_limit_milli(&no_limit).unwrap(), None);

    assert!(err(RESOURCE_CPU, json!({"default": true})).contains("default"));
    assert!(err(RESOURCE_CPU, json!({"limit": "lots"})).contains("\"lots\""));
    assert!(err(RESOURCE_MEMORY, json!("1G")).contains("must be a JSON object"));
    assert!(validate(&iso(
        RESOURCE_BLOCK_BANDWIDTH,
        json!({"default": true, "limit": "1M"})
    ))
    .is_ok());
    assert!(err(RESOURCE_BLOCK_IOPS, json!({"limit": "1"})).contains("default"));
    assert!(err(
        RESOURCE_NETWORK_BANDWIDTH,
        json!({"default": true, "request": "1"})
    )
    .contains("request"));
}

#[test]
fn capabilities() {
    let retain = iso(
        LINUX_CAPABILITIES_RETAIN_SET,
        json!({"set": ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]}),
    );
    assert_eq!(
        parse(&retain).unwrap(),
        Some(Known::CapabilitiesRetain(vec![
            "CAP_NET_ADMIN".into(),
            "CAP_SYS_PTRACE".into()
        ]))
    );
    assert!(err(LINUX_CAPABILITIES_REMOVE_SET, json!({"set": []})).contains("must not be empty"));
    assert!(
        err(LINUX_CAPABILITIES_REMOVE_SET, json!({"set": ["NET_ADMIN"]})).contains("\"NET_ADMIN\"")
    );
    assert!(
        err(LINUX_CAPABILITIES_REMOVE_SET, json!({"set": ["cap_kill"]})).contains("\"cap_kill\"")
    );
    assert!(err(LINUX_CAPABILITIES_RETAIN_SET, json!({"set": "CAP_KILL"})).contains("list"));
    assert_eq!(DEFAULT_CAPABILITIES.len(), 14);
}

#[test]
fn scalars() {
    assert_eq!(
        parse(&iso(LINUX_NO_NEW_PRIVILEGES, json!(true))).unwrap(),
        Some(Known::NoNewPrivileges(true))
    );
    assert!(err(LINUX_NO_NEW_PRIVILEGES, json!("yes")).contains("\"yes\""));
    assert_eq!(
        parse(&iso(LINUX_OOM_SCORE_ADJ, json!(-1000))).unwrap(),
        Some(Known::OomScoreAdj(-1000))
    );
    let e = err(LINUX_OOM_SCORE_ADJ, json!(1001));
    assert!(
        e.contains("os/linux/oom-score-adj") && e.contains("\"1001\""),
        "{e}"
    );
    assert_eq!(
        parse(&iso(LINUX_CPU_SHARES, json!(1024))).unwrap(),
        Some(Known::CpuShares(1024))
    );
    assert!(err(LINUX_CPU_SHARES, json!(1)).contains("between 2 and 262144"));
    assert!(err(LINUX_CPU_SHARES, json!(2.5)).contains("integer"));
}

#[test]
fn seccomp_and_selinux_and_sysctl() {
    let s = iso(
        LINUX_SECCOMP_REMOVE_SET,
        json!({"set": ["@docker/default-blacklist"], "errno": "EPERM"}),
    );
    assert_eq!(
        parse(&s).unwrap(),
        Some(Known::SeccompRemove(Seccomp {
            set: vec!["@docker/default-blacklist".into()],
            errno: Some("EPERM".into())
        }))
    );
    assert!(err(LINUX_SECCOMP_RETAIN_SET, json!({"set": []})).contains("must not be empty"));
    assert!(err(
        LINUX_SECCOMP_RETAIN_SET,
        json!({"set": ["read"], "errno": "eperm"})
    )
    .contains("\"eperm\""));
    assert!(err(
        LINUX_SECCOMP_RETAIN_SET,
        json!({"set": ["read"], "errno": "PERM"})
    )
    .contains("\"PERM\""));
    let se = json!({"user": "system_u", "role": "system_r", "type": "svirt_lxc_net_t", "level": "s0:c1,c2"});
    assert!(validate(&iso(LINUX_SELINUX_CONTEXT, se)).is_ok());
    assert!(err(
        LINUX_SELINUX_CONTEXT,
        json!({"user": "a:b", "role": "r", "type": "t", "level": "l"})
    )
    .contains("\"a:b\""));
    assert!(validate(&iso(UNIX_SYSCTL, json!({"net.ipv4.ip_forward": "1"}))).is_ok());
    assert!(err(UNIX_SYSCTL, json!({"a": 1})).contains("must be a string"));
}

#[test]
fn unknown_isolators_kept_unvalidated() {
    let u = iso(
        "example.com/whatever",
        json!({"anything": [1, {"x": null}]}),
    );
    assert_eq!(parse(&u).unwrap(), None);
    assert!(validate(&u).is_ok());
    assert!(err("Bad Name", json!(null)).contains("\"Bad Name\""));
}

#[test]
fn list_rules() {
    let shares = iso(LINUX_CPU_SHARES, json!(10));
    let e = validate_list("app.isolators", &[shares.clone(), shares])
        .unwrap_err()
        .to_string();
    assert_eq!(e, "duplicate app.isolators name \"os/linux/cpu-shares\"");
    let retain = iso(LINUX_SECCOMP_RETAIN_SET, json!({"set": ["read"]}));
    let remove = iso(LINUX_SECCOMP_REMOVE_SET, json!({"set": ["write"]}));
    let e = validate_list("app.isolators", &[retain, remove])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be combined"), "{e}");
    let mem = iso(RESOURCE_MEMORY, json!({"limit": "1G"}));
    assert!(
        validate_list("app.isolators", &[mem.clone(), mem]).is_ok(),
        "resources may repeat"
    );
    let e = validate_list("app.isolators", &[iso(LINUX_OOM_SCORE_ADJ, json!(5000))])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("invalid app.isolators: isolator os/linux/oom-score-adj value"),
        "{e}"
    );
}

#[test]
fn resource_builder() {
    let m = resource(RESOURCE_MEMORY, None, "128M").unwrap();
    assert_eq!(
        m.value,
        json!({"default": false, "request": "128M", "limit": "128M"})
    );
    assert_eq!(memory_limit_bytes(&m).unwrap(), Some(128_000_000));
    let c = resource(RESOURCE_CPU, Some("250m"), "0.5").unwrap();
    assert_eq!(
        c.value,
        json!({"default": false, "request": "250m", "limit": "500m"})
    );
    assert_eq!(cpu_limit_milli(&c).unwrap(), Some(500));
    // `json!` equality ignores key order; the written text must not.
    assert_eq!(
        serde_json::to_string(&c.value).unwrap(),
        r#"{"default":false,"request":"250m","limit":"500m"}"#
    );
    let e = resource(RESOURCE_MEMORY, None, "16m")
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"16m\"") && e.contains("too low"), "{e}");
    assert!(resource(RESOURCE_MEMORY, None, "4Ki").is_ok());
    assert!(resource(RESOURCE_MEMORY, None, "4095").is_err());
    assert!(resource(RESOURCE_CPU, None, "x")
        .unwrap_err()
        .to_string()
        .contains("cpu limit \"x\""));
    assert!(resource("resource/block-iops", None, "1").is_err());
}

#[test]
fn capability_names_and_numbers() {
    assert_eq!(CAPABILITY_NAMES[21], "CAP_SYS_ADMIN");
    assert_eq!(capability_number("CAP_CHOWN"), Some(0));
    assert_eq!(capability_number("cap_net_raw"), Some(13));
    assert_eq!(capability_number("Sys_Admin"), Some(21));
    assert_eq!(capability_number("CAP_CHECKPOINT_RESTORE"), Some(40));
    assert_eq!(capability_number("CAP_NOPE"), None);
    assert_eq!(capability_number(""), None);
    assert_eq!(capability_number("CAP_"), None);
    assert_eq!(
        capability_name("dac_read_search"),
        Some("CAP_DAC_READ_SEARCH")
    );
    for name in DEFAULT_CAPABILITIES {
        assert!(capability_number(name).is_some(), "{name}");
        assert!(is_default_capability(name));
    }
    assert!(is_default_capability("kill"));
    assert!(!is_default_capability("CAP_DAC_READ_SEARCH"));
    assert!(!is_default_capability("CAP_NOPE"));
}

#[test]
fn retained_capabilities_is_the_union_of_all_retain_sets() {
    assert_eq!(retained_capabilities(&[]), None);
    let remove = iso(LINUX_CAPABILITIES_REMOVE_SET, json!({"set": ["CAP_KILL"]}));
    assert_eq!(retained_capabilities(&[remove]), None);
    let a = iso(
        LINUX_CAPABILITIES_RETAIN_SET,
        json!({"set": ["CAP_CHOWN", "cap_kill"]}),
    );
    let b = iso(
        LINUX_CAPABILITIES_RETAIN_SET,
        json!({"Set": ["CAP_KILL", "CAP_DAC_READ_SEARCH", "CAP_WHATEVER", 7]}),
    );
    assert_eq!(
        retained_capabilities(&[a, b]).unwrap(),
        [
            "CAP_CHOWN",
            "CAP_KILL",
            "CAP_DAC_READ_SEARCH",
            "CAP_WHATEVER",
            "7"
        ]
    );
}
