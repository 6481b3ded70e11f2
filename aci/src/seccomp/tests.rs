use super::*;
use serde_json::json;

fn iso(name: &str, value: serde_json::Value) -> Isolator {
    Isolator {
        name: name.into(),
        value,
    }
}

fn retain(set: &[&str]) -> Isolator {
    iso(isolator::LINUX_SECCOMP_RETAIN_SET, json!({ "set": set }))
}

fn remove(set: &[&str], errno: &str) -> Isolator {
    iso(
        isolator::LINUX_SECCOMP_REMOVE_SET,
        json!({ "set": set, "errno": errno }),
    )
}

fn nr(name: &str) -> u32 {
    syscall_number(name).unwrap()
}

#[test]
fn tables_know_current_syscalls_and_errnos() {
    assert_eq!(syscall_number("read"), Some(0));
    assert_eq!(syscall_number("clone3"), Some(435));
    assert_eq!(syscall_number("chown32"), None, "not an x86_64 syscall");
    assert_eq!(errno_number("EPERM"), Some(1));
    assert_eq!(errno_number("EXFULL"), Some(54));
    assert_eq!(errno_number("ENOPE"), None);
}

#[test]
fn no_isolator_is_the_default_allow_list_refusing_with_eperm() {
    let p = policy(&[]).unwrap().unwrap();
    assert_eq!(p.mode, Mode::Allow);
    assert_eq!(p.refusal, Refusal::Errno(1));
    assert!(p.block_user_namespaces);
    for allowed in ["read", "execve", "statx", "rseq", "clone", "openat2"] {
        assert!(p.syscalls.contains(&nr(allowed)), "{allowed}");
    }
    for refused in [
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "init_module",
        "finit_module",
        "delete_module",
        "unshare",
        "setns",
        "mount",
        "clone3",
        "ptrace",
    ] {
        assert!(!p.syscalls.contains(&nr(refused)), "{refused}");
    }
    assert!(p.syscalls.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
}

#[test]
fn wildcards_follow_rkt() {
    assert_eq!(policy(&[retain(&["@appc.io/all"])]).unwrap(), None);
    assert_eq!(
        policy(&[remove(&["@appc.io/empty"], "")]).unwrap(),
        Some(default_policy())
    );
    let docker = policy(&[retain(&["@docker/default-whitelist"])])
        .unwrap()
        .unwrap();
    assert_eq!(docker.syscalls, default_policy().syscalls);
    assert_eq!(
        docker.refusal,
        Refusal::Kill,
        "no errno: SIGSYS as systemd did"
    );
    let black = policy(&[remove(&["@rkt/default-blacklist"], "ENOSYS")])
        .unwrap()
        .unwrap();
    assert_eq!(black.mode, Mode::Deny);
    assert_eq!(black.refusal, Refusal::Errno(38));
    assert!(black.syscalls.contains(&nr("keyctl")));
    assert!(!black.syscalls.contains(&nr("clone")), "fork keeps working");
    assert!(black.block_user_namespaces);
}

#[test]
fn explicit_sets_keep_what_every_program_needs() {
    let p = policy(&[retain(&["read", "write"])]).unwrap().unwrap();
    let mut want: Vec<u32> = [
        "read",
        "write",
        "execve",
        "exit",
        "exit_group",
        "rt_sigreturn",
        "capget",
        "capset",
    ]
    .iter()
    .map(|n| nr(n))
    .collect();
    want.sort_unstable();
    assert_eq!(p.syscalls, want);
    assert!(!p.block_user_namespaces);
    let d = policy(&[remove(&["stat", "reboot"], "EXFULL")])
        .unwrap()
        .unwrap();
    assert_eq!(d.syscalls, vec![nr("stat"), nr("reboot")]);
    assert_eq!(d.refusal, Refusal::Errno(54));
}

#[test]
fn unknown_names_are_errors_naming_them() {
    let e = policy(&[retain(&["read", "frobnicate"])])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("frobnicate") && e.contains("seccomp-retain-set"),
        "{e}"
    );
    let e = policy(&[retain(&["@systemd/clock"])])
        .unwrap_err()
        .to_string();
    assert!(e.contains("@systemd/clock"), "{e}");
    let e = policy(&[remove(&["reboot"], "ENOTANERRNO")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("ENOTANERRNO"), "{e}");
    assert!(policy(&[retain(&["@appc.io/empty"])]).is_err());
}
