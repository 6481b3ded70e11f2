//! Isolators this stage1 does not enforce: block and network bandwidth (rkt did not either),
//! SELinux and AppArmor contexts and sysctls. rkt skipped an isolator it could not apply with a
//! warning; so do we, one line per isolator, so that none is silently ignored. Capabilities
//! (`caps.rs`), memory, CPU, CPU shares, OOM score, no-new-privileges and seccomp
//! (`confine.rs`) are enforced.
use aci::schema::App;

/// The isolators this stage1 enforces.
const ENFORCED: [&str; 9] = [
    aci::isolator::LINUX_CAPABILITIES_RETAIN_SET,
    aci::isolator::LINUX_CAPABILITIES_REMOVE_SET,
    aci::isolator::RESOURCE_MEMORY,
    aci::isolator::RESOURCE_CPU,
    aci::isolator::LINUX_CPU_SHARES,
    aci::isolator::LINUX_OOM_SCORE_ADJ,
    aci::isolator::LINUX_NO_NEW_PRIVILEGES,
    aci::isolator::LINUX_SECCOMP_RETAIN_SET,
    aci::isolator::LINUX_SECCOMP_REMOVE_SET,
];

/// One warning per isolator of `app` that is not enforced.
pub fn unenforced(app_name: &str, app: &App) -> Vec<String> {
    app.isolators
        .iter()
        .filter(|i| !ENFORCED.contains(&i.name.as_str()))
        .map(|i| {
            format!(
                "warning: app {app_name}: isolator {} is not enforced by this stage1; the app runs without it",
                i.name
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aci::schema::Isolator;

    #[test]
    fn unenforced_isolators_are_named() {
        let iso = |name: &str| Isolator {
            name: name.into(),
            value: serde_json::json!({}),
        };
        let app = App {
            isolators: vec![
                iso("resource/memory"),
                iso("resource/network-bandwidth"),
                iso("os/linux/capabilities-retain-set"),
                iso("os/linux/seccomp-remove-set"),
                iso("os/unix/sysctl"),
            ],
            ..App::default()
        };
        let warnings = unenforced("web", &app);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("resource/network-bandwidth"));
        assert!(warnings[1].contains("os/unix/sysctl"));
    }
}
