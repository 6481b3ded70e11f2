//! Linux capabilities of an app: rkt's default set, adjusted by the appc capability isolators
//! (docs/stage-contract.md, "Capabilities"). stage2-init applies the numbers.
use aci::isolator::{
    capability_number, LINUX_CAPABILITIES_REMOVE_SET as REMOVE,
    LINUX_CAPABILITIES_RETAIN_SET as RETAIN,
};
use aci::schema::App;
use anyhow::{bail, Result};

fn number(name: &str) -> Result<u32> {
    match capability_number(name) {
        Some(n) => Ok(n),
        None => bail!("unknown capability {name:?}"),
    }
}

fn names_of(app: &App, isolator: &str) -> Result<Option<Vec<String>>> {
    let Some(iso) = app.isolators.iter().rev().find(|i| i.name == isolator) else {
        return Ok(None);
    };
    let Some(set) = iso.value.get("set").and_then(|s| s.as_array()) else {
        bail!("isolator {isolator} needs a \"set\" list of capability names");
    };
    set.iter()
        .map(|v| match v.as_str() {
            Some(s) => Ok(s.to_string()),
            None => bail!("isolator {isolator}: capability names are strings, got {v}"),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// The capability numbers an app keeps, in ascending order.
pub fn app_caps(app: &App) -> Result<Vec<u32>> {
    let retain = names_of(app, RETAIN)?;
    let remove = names_of(app, REMOVE)?;
    let mut caps: Vec<u32> = match (retain, remove) {
        (Some(_), Some(_)) => bail!("an app cannot have both {RETAIN} and {REMOVE}"),
        (Some(keep), None) => keep.iter().map(|n| number(n)).collect::<Result<_>>()?,
        (None, remove) => {
            let drop: Vec<u32> = remove
                .unwrap_or_default()
                .iter()
                .map(|n| number(n))
                .collect::<Result<_>>()?;
            aci::isolator::DEFAULT_CAPABILITIES
                .iter()
                .map(|n| number(n).expect("bug: default capabilities are known"))
                .filter(|c| !drop.contains(c))
                .collect()
        }
    };
    caps.sort_unstable();
    caps.dedup();
    Ok(caps)
}

/// What stage2-init itself needs as the pod's PID 1: pivot_root and mounts for each app
/// (SYS_ADMIN, which also lets it load seccomp filters for root apps), changing to the apps'
/// users (SETUID, SETGID), narrowing their bounding sets (SETPCAP), setting OOM scores
/// (SYS_RESOURCE), signalling apps of any user (KILL), and its own status and pty files
/// (CHOWN, FOWNER, DAC_OVERRIDE).
const INIT_CAPS: [&str; 9] = [
    "CAP_SYS_ADMIN",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SYS_RESOURCE",
    "CAP_KILL",
    "CAP_CHOWN",
    "CAP_FOWNER",
    "CAP_DAC_OVERRIDE",
];

/// The bounding set of the pod's PID 1: its own needs plus every app's capabilities (apps can
/// only get what PID 1 holds). `None` when an app keeps everything
/// (`--insecure-options=capabilities`).
pub fn init_bounding_set(app_caps: &[Option<Vec<u32>>]) -> Option<u64> {
    let mut mask = INIT_CAPS
        .iter()
        .map(|n| number(n).expect("bug: known capability"))
        .fold(0u64, |m, c| m | 1 << c);
    for caps in app_caps {
        for c in caps.as_ref()? {
            mask |= 1u64 << (*c).min(63);
        }
    }
    Some(mask)
}

/// The highest capability number the running kernel knows (40 if it cannot be read).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aci::schema::Isolator;

    fn app(isolators: &[(&str, &[&str])]) -> App {
        App {
            isolators: isolators
                .iter()
                .map(|(name, set)| Isolator {
                    name: name.to_string(),
                    value: serde_json::json!({ "set": set }),
                })
                .collect(),
            ..App::default()
        }
    }

    #[test]
    fn default_set_is_rkts_fourteen() {
        let caps = app_caps(&app(&[])).unwrap();
        assert_eq!(caps.len(), 14);
        assert!(caps.contains(&0) && caps.contains(&18) && caps.contains(&27));
        assert!(!caps.contains(&21), "no CAP_SYS_ADMIN");
        assert!(!caps.contains(&19), "no CAP_SYS_PTRACE");
    }

    #[test]
    fn retain_and_remove_sets() {
        assert_eq!(
            app_caps(&app(&[(RETAIN, &["CAP_NET_ADMIN", "chown"])])).unwrap(),
            vec![0, 12]
        );
        let fewer = app_caps(&app(&[(REMOVE, &["CAP_MKNOD"])])).unwrap();
        assert_eq!(fewer.len(), 13);
        assert!(!fewer.contains(&27));
        assert!(app_caps(&app(&[(RETAIN, &["CAP_NOPE"])])).is_err());
        assert!(app_caps(&app(&[(RETAIN, &["CAP_CHOWN"]), (REMOVE, &["CAP_KILL"])])).is_err());
    }

    #[test]
    fn init_keeps_its_own_needs_and_the_apps_caps_only() {
        let mask = init_bounding_set(&[Some(vec![12]), Some(vec![0])]).unwrap();
        assert!(mask & 1 << 21 != 0, "CAP_SYS_ADMIN for pivot_root");
        assert!(mask & 1 << 24 != 0, "CAP_SYS_RESOURCE for OOM scores");
        assert!(mask & 1 << 12 != 0, "an app's CAP_NET_ADMIN");
        assert_eq!(mask & 1 << 19, 0, "no CAP_SYS_PTRACE");
        assert_eq!(mask & 1 << 17, 0, "no CAP_SYS_RAWIO");
        assert_eq!(mask & 1 << 16, 0, "no CAP_SYS_MODULE");
        assert_eq!(init_bounding_set(&[Some(vec![]), None]), None);
    }
}
