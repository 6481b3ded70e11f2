//! Compiles an app's seccomp policy (`aci::seccomp`) into the BPF programs stage2-init loads
//! just before `execve` (docs/stage-contract.md, "Seccomp"). stage2-init stays small: it
//! only hands these bytes to the kernel.
use std::collections::BTreeMap;

use aci::seccomp::{Mode, Policy, Refusal};
use anyhow::{Context, Result};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Syscall numbers of the x32 ABI on x86_64 carry this bit; a deny list refuses those
/// spellings too, so a kernel with x32 support offers no way around it.
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

fn nr(name: &str) -> i64 {
    i64::from(aci::seccomp::syscall_number(name).expect("bug: syscall missing from the table"))
}

fn refusal(r: Refusal) -> SeccompAction {
    match r {
        Refusal::Errno(e) => SeccompAction::Errno(e as u32),
        Refusal::Kill => SeccompAction::KillProcess,
    }
}

/// `clone` whose flags do (`true`) or do not (`false`) ask for a new user namespace.
fn clone_newuser(wanted: bool) -> Result<SeccompRule> {
    let flag = libc::CLONE_NEWUSER as u64;
    let cond = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(flag),
        if wanted { flag } else { 0 },
    )?;
    Ok(SeccompRule::new(vec![cond])?)
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    on_match: SeccompAction,
) -> Result<BpfProgram> {
    let filter = SeccompFilter::new(rules, mismatch, on_match, TargetArch::x86_64)?;
    Ok(filter.try_into()?)
}

/// The programs for `policy`, in the order they must be loaded.
pub fn programs(policy: &Policy) -> Result<Vec<BpfProgram>> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let block_userns = policy.block_user_namespaces;
    for &n in &policy.syscalls {
        rules.insert(i64::from(n), Vec::new());
    }
    let main = match policy.mode {
        Mode::Allow => {
            if block_userns {
                if let Some(clone) = rules.get_mut(&nr("clone")) {
                    *clone = vec![clone_newuser(false)?];
                }
                // Allowed here only so that the second program's ENOSYS decides.
                rules.insert(nr("clone3"), Vec::new());
            }
            compile(rules, refusal(policy.refusal), SeccompAction::Allow)?
        }
        Mode::Deny => {
            if block_userns {
                rules.insert(nr("clone"), vec![clone_newuser(true)?]);
            }
            let x32: Vec<(i64, Vec<SeccompRule>)> = rules
                .iter()
                .map(|(n, r)| (n | X32_SYSCALL_BIT, r.clone()))
                .collect();
            rules.extend(x32);
            compile(rules, SeccompAction::Allow, refusal(policy.refusal))?
        }
    };
    let mut out = vec![main];
    if block_userns {
        // clone3's flags live in memory a filter cannot read: libc falls back to clone,
        // which the first program inspects. Loaded last, so its errno wins (seccomp(2)).
        let only_clone3 = BTreeMap::from([(nr("clone3"), Vec::new())]);
        out.push(compile(
            only_clone3,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
        )?);
    }
    Ok(out)
}

/// The file stage2-init reads: for each program, its instruction count (u32, native
/// endianness) then its `struct sock_filter` instructions (8 bytes each).
pub fn encode(programs: &[BpfProgram]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in programs {
        out.extend_from_slice(&(p.len() as u32).to_ne_bytes());
        for ins in p {
            out.extend_from_slice(&ins.code.to_ne_bytes());
            out.push(ins.jt);
            out.push(ins.jf);
            out.extend_from_slice(&ins.k.to_ne_bytes());
        }
    }
    out
}

/// The encoded filter for an app's isolators; `None` when it runs unfiltered.
pub fn for_app(app_name: &str, isolators: &[aci::schema::Isolator]) -> Result<Option<Vec<u8>>> {
    let policy = aci::seccomp::policy(isolators).with_context(|| format!("app {app_name}"))?;
    match policy {
        None => Ok(None),
        Some(p) => Ok(Some(encode(&programs(&p).with_context(|| {
            format!("app {app_name}: cannot build its seccomp filter")
        })?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_two_programs_and_encodes_whole_instructions() {
        let progs = programs(&aci::seccomp::default_policy()).unwrap();
        assert_eq!(progs.len(), 2);
        let bytes = encode(&progs);
        let first = u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(first, progs[0].len());
        assert_eq!(bytes.len(), 8 + 8 * (progs[0].len() + progs[1].len()));
    }

    #[test]
    fn unfiltered_apps_get_no_file() {
        let iso = aci::schema::Isolator {
            name: aci::isolator::LINUX_SECCOMP_RETAIN_SET.into(),
            value: serde_json::json!({"set": ["@appc.io/all"]}),
        };
        assert_eq!(for_app("web", &[iso]).unwrap(), None);
        assert!(for_app("web", &[]).unwrap().is_some());
    }
}
