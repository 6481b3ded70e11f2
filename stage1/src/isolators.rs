//! Isolators this stage1 cannot enforce yet (resource limits, CPU shares, OOM score, seccomp,
//! no-new-privileges and the rest, which come with the cgroup and seccomp work). rkt skips an
//! isolator whose controller is missing with a warning; so do we, one line per isolator, so
//! that none is silently ignored. Capability isolators are enforced (see `caps.rs`).
use aci::schema::App;

/// The isolators this stage1 enforces.
const ENFORCED: [&str; 2] = [
    aci::isolator::LINUX_CAPABILITIES_RETAIN_SET,
    aci::isolator::LINUX_CAPABILITIES_REMOVE_SET,
];

/// One warning per isolator of `app` that is not enforced.
pub fn unenforced(app_name: &str, app: &App) -> Vec<String> {
    app.isolators
        .iter()
        .filter(|i| !ENFORCED.contains(&i.name.as_str()))
        .map(|i| {
            format!(
                "warning: app {app_name}: isolator {} is not enforced by this stage1 yet (it has no cgroup or seccomp support); the app runs without it",
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
    fn only_capability_isolators_are_enforced() {
        let iso = |name: &str| Isolator {
            name: name.into(),
            value: serde_json::json!({}),
        };
        let app = App {
            isolators: vec![
                iso("resource/memory"),
                iso("os/linux/capabilities-retain-set"),
                iso("os/linux/seccomp-remove-set"),
            ],
            ..App::default()
        };
        let warnings = unenforced("web", &app);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("resource/memory"));
        assert!(warnings[1].contains("os/linux/seccomp-remove-set"));
    }
}
