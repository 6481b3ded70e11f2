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
}
