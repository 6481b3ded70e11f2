//! The isolator flags of an app (`--memory`, `--cpu`, `--cpu-shares`, `--oom-score-adj`,
//! `--seccomp`, `--caps-retain`, `--caps-remove`) and the rule that an image may only narrow
//! rkt's default capabilities.
use aci::isolator::{
    LINUX_CAPABILITIES_REMOVE_SET, LINUX_CAPABILITIES_RETAIN_SET, LINUX_CPU_SHARES,
    LINUX_OOM_SCORE_ADJ, LINUX_SECCOMP_REMOVE_SET, LINUX_SECCOMP_RETAIN_SET,
};
use aci::schema::{App, Isolator};
use anyhow::{anyhow, bail, Context, Result};

use super::ResolvedApp;

/// Where the operator grants capabilities beyond the default, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapsGrant {
    /// `--caps-retain` after the image.
    Flag,
    /// The app's own `app` section in a `--pod-manifest`.
    PodManifest,
}

/// An image may only narrow rkt's default capabilities: a retain set within the default, or
/// any remove set. Anything more (e.g. `CAP_DAC_READ_SEARCH`, which reads host files through
/// `open_by_handle_at`) needs the operator's consent, as in Docker and runc, where images
/// never choose their capabilities. Must run before the pod directory is created.
pub fn check_image_caps(image: &str, isolators: &[Isolator], grant: CapsGrant) -> Result<()> {
    let Some(retained) = aci::isolator::retained_capabilities(isolators) else {
        return Ok(());
    };
    let beyond: Vec<&str> = retained
        .iter()
        .map(String::as_str)
        .filter(|c| !aci::isolator::is_default_capability(c))
        .collect();
    if beyond.is_empty() {
        return Ok(());
    }
    let how = match grant {
        CapsGrant::Flag => format!(
            "to grant them, add --caps-retain={} after the image",
            retained.join(",")
        ),
        CapsGrant::PodManifest => {
            "to grant them, give the app its own \"app\" section with a capabilities-retain-set isolator in the pod manifest".to_string()
        }
    };
    bail!(
        "image {image:?} asks for capabilities beyond rkt's default set: {}; {how} (or run with --insecure-options=capabilities)",
        beyond.join(",")
    )
}

/// `--caps-retain`/`--caps-remove` (or rkt's deprecated `--cap-retain`/`--cap-remove`): the
/// one capability isolator that replaces the image's.
fn caps_override(ra: &ResolvedApp<'_>) -> Result<Option<Isolator>> {
    let req = ra.request;
    let ((flag, value), name) = match (&req.caps_retain, &req.caps_remove) {
        (Some(_), Some(_)) => {
            bail!("cannot use both --caps-retain and --caps-remove on the same image")
        }
        (Some(retain), None) => (retain, LINUX_CAPABILITIES_RETAIN_SET),
        (None, Some(remove)) => (remove, LINUX_CAPABILITIES_REMOVE_SET),
        (None, None) => return Ok(None),
    };
    if let Some(kind) = flag.strip_prefix("cap-") {
        eprintln!("Flag --{flag} has been deprecated, use --caps-{kind} instead");
    }
    Ok(Some(Isolator {
        name: name.to_string(),
        value: serde_json::json!({ "set": capability_list(flag, value)? }),
    }))
}

/// A comma list of capability names, any case, with or without `CAP_`, in canonical spelling.
pub fn capability_list(flag: &str, value: &str) -> Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for item in value.split(',') {
        let Some(name) = aci::isolator::capability_name(item) else {
            bail!("unknown capability {item:?} in --{flag}={value:?}: use names such as CAP_NET_ADMIN (see capabilities(7))");
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// `--seccomp mode=retain|remove[,errno=E],SYSCALL...`.
fn seccomp(value: &str) -> Result<Isolator> {
    let mut mode = None;
    let mut errno = None;
    let mut set = Vec::new();
    for item in value.split(',').filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some(("mode", m)) => mode = Some(m),
            Some(("errno", e)) => errno = Some(e),
            Some((k, _)) => bail!("unknown seccomp option {k:?} in --seccomp={value:?}"),
            None => set.push(item),
        }
    }
    let name = match mode {
        Some("retain") => LINUX_SECCOMP_RETAIN_SET,
        Some("remove") => LINUX_SECCOMP_REMOVE_SET,
        _ => bail!("--seccomp={value:?}: give mode=retain or mode=remove first"),
    };
    let mut iso = serde_json::json!({ "set": set });
    if let Some(e) = errno {
        iso["errno"] = e.into();
    }
    checked(name, iso, "--seccomp")
}

/// An isolator from a flag, validated as appc says (the message names the flag).
fn checked(name: &str, value: serde_json::Value, flag: &str) -> Result<Isolator> {
    let iso = Isolator {
        name: name.to_string(),
        value,
    };
    aci::isolator::validate(&iso).with_context(|| format!("invalid {flag}"))?;
    Ok(iso)
}

fn integer(flag: &str, value: &str) -> Result<i64> {
    value
        .parse()
        .map_err(|_| anyhow!("{flag} takes an integer, not {value:?}"))
}

/// Applies the isolator flags to `app`, in rkt's order: `--memory` and `--cpu` are appended
/// (the last one wins in stage1), `--cpu-shares`, `--oom-score-adj` and `--seccomp` replace
/// their kind, a capability flag replaces every capability isolator of the image.
pub fn apply(app: &mut App, ra: &ResolvedApp<'_>, allow_image_caps: bool) -> Result<()> {
    let image = &ra.manifest.name;
    let req = ra.request;
    let caps = caps_override(ra).with_context(|| format!("image {image}"))?;
    if caps.is_none() {
        if let Err(refused) = check_image_caps(image, &app.isolators, CapsGrant::Flag) {
            if !allow_image_caps {
                return Err(refused);
            }
            // --insecure-options=capabilities lifts the restriction for this run only: the
            // image's wish is not recorded in the pod manifest, where a later run-prepared
            // without that option would grant it.
            app.isolators
                .retain(|i| !i.name.starts_with("os/linux/capabilities-"));
        }
    }
    if let Some(mem) = &req.memory {
        let iso = aci::isolator::resource(aci::isolator::RESOURCE_MEMORY, None, mem)
            .with_context(|| format!("image {image}: --memory"))?;
        if let Ok(Some(bytes)) = aci::isolator::memory_limit_bytes(&iso) {
            if bytes < aci::isolator::MIN_MEMORY_LIMIT {
                bail!("memory limit of {bytes} bytes too low. Try a reasonable value, such as --memory=16M");
            }
        }
        app.isolators.push(iso);
    }
    if let Some(cpu) = &req.cpu {
        let iso = aci::isolator::resource(aci::isolator::RESOURCE_CPU, None, cpu)
            .with_context(|| format!("image {image}: --cpu"))?;
        app.isolators.push(iso);
    }
    let mut replace = |iso: Isolator, kinds: &[&str]| {
        app.isolators.retain(|i| !kinds.contains(&i.name.as_str()));
        app.isolators.push(iso);
    };
    if let Some(shares) = &req.cpu_shares {
        let n = integer("--cpu-shares", shares)?;
        replace(
            checked(LINUX_CPU_SHARES, serde_json::json!(n), "--cpu-shares")?,
            &[LINUX_CPU_SHARES],
        );
    }
    if let Some(adj) = &req.oom_score_adj {
        let n = integer("--oom-score-adj", adj)?;
        replace(
            checked(LINUX_OOM_SCORE_ADJ, serde_json::json!(n), "--oom-score-adj")?,
            &[LINUX_OOM_SCORE_ADJ],
        );
    }
    if let Some(filter) = &req.seccomp {
        replace(
            seccomp(filter)?,
            &[LINUX_SECCOMP_RETAIN_SET, LINUX_SECCOMP_REMOVE_SET],
        );
    }
    if let Some(caps) = caps {
        replace(
            caps,
            &[LINUX_CAPABILITIES_RETAIN_SET, LINUX_CAPABILITIES_REMOVE_SET],
        );
    }
    check_enforceable(&app.isolators).with_context(|| format!("image {image}"))
}

/// Largest CPU limit accepted, in millicores (1000 cores): the kernel's CFS quota has a
/// ceiling, and a bigger number is a typo, not a limit.
const MAX_CPU_MILLI: i64 = 1_000_000;

/// What stage1 would refuse, refused now, before the pod exists: limits it cannot apply and
/// seccomp sets naming syscalls, groups or errnos it does not know.
fn check_enforceable(isolators: &[Isolator]) -> Result<()> {
    for iso in isolators {
        if let Some(milli) = aci::isolator::cpu_limit_milli(iso)? {
            if !(1..=MAX_CPU_MILLI).contains(&milli) {
                bail!("cpu limit {milli}m is out of range: give between 1m and 1000 (cores), e.g. --cpu=500m");
            }
        }
        if let Some(bytes) = aci::isolator::memory_limit_bytes(iso)? {
            if bytes < aci::isolator::MIN_MEMORY_LIMIT {
                bail!("memory limit of {bytes} bytes too low. Try a reasonable value, such as --memory=16M");
            }
        }
    }
    aci::seccomp::policy(isolators)?;
    Ok(())
}
