//! The `app` section of image manifests (and of pod manifest apps, where it replaces the image's).
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::types::{check_name, Isolator};
use crate::validate::is_env_name;
use crate::ValidationError;

/// What to run and how. `working_directory` is `""` when unset (the spec default is `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct App {
    pub exec: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub event_handlers: Vec<EventHandler>,
    pub user: String,
    pub group: String,
    #[serde(rename = "supplementaryGIDs", skip_serializing_if = "Vec::is_empty")]
    pub supplementary_gids: Vec<u32>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub working_directory: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<EnvVar>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub isolators: Vec<Isolator>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
}

/// `pre-start` or `post-stop`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventHandler {
    pub name: String,
    pub exec: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MountPoint {
    pub name: String,
    pub path: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// A port the app listens on. `count` is the length of the range starting at `port`; it reads
/// as 1 when absent or 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Port {
    pub name: String,
    pub protocol: String,
    pub port: u32,
    pub count: u32,
    pub socket_activated: bool,
}

impl Default for Port {
    fn default() -> Port {
        Port {
            name: String::new(),
            protocol: String::new(),
            port: 0,
            count: 1,
            socket_activated: false,
        }
    }
}

impl Port {
    pub(crate) fn validate(&self, field: &str) -> Result<(), ValidationError> {
        check_name(&format!("{field} name"), &self.name)?;
        if !(1..=65535).contains(&self.port) {
            return Err(ValidationError::invalid(
                format!("{field} {:?} port", self.name),
                self.port.to_string(),
                "must be in the range 1-65535",
            ));
        }
        if u64::from(self.port) + u64::from(self.count) > 65536 {
            return Err(ValidationError::invalid(
                format!("{field} {:?} count", self.name),
                self.count.to_string(),
                "the end of the port range must be at most 65535",
            ));
        }
        Ok(())
    }

    /// Go sets a zero count to 1 after reading.
    pub(crate) fn normalize(&mut self) {
        if self.count == 0 {
            self.count = 1;
        }
    }
}

impl App {
    /// Checks the rules the appc schema enforces on an app. `exec` is not checked: rkt accepts
    /// relative or missing commands here and resolves them when the pod starts.
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        if self.user.is_empty() {
            return Err(ValidationError::missing(format!("{field}.user")));
        }
        if self.group.is_empty() {
            return Err(ValidationError::missing(format!("{field}.group")));
        }
        if !self.working_directory.is_empty() && !self.working_directory.starts_with('/') {
            return Err(ValidationError::invalid(
                format!("{field}.workingDirectory"),
                &self.working_directory,
                "must be an absolute path",
            ));
        }
        let mut handlers = BTreeSet::new();
        for h in &self.event_handlers {
            let f = format!("{field}.eventHandlers name");
            match h.name.as_str() {
                "" => return Err(ValidationError::missing(f)),
                "pre-start" | "post-stop" => {}
                other => {
                    return Err(ValidationError::invalid(
                        f,
                        other,
                        "must be pre-start or post-stop",
                    ))
                }
            }
            if !handlers.insert(h.name.as_str()) {
                return Err(ValidationError::duplicate(f, &h.name));
            }
        }
        let mut env = BTreeSet::new();
        for e in &self.environment {
            let f = format!("{field}.environment name");
            if e.name.is_empty() {
                return Err(ValidationError::missing(f));
            }
            if !is_env_name(&e.name) {
                return Err(ValidationError::invalid(
                    f,
                    &e.name,
                    "must match [A-Za-z_][A-Za-z_0-9.-]*",
                ));
            }
            if !env.insert(e.name.as_str()) {
                return Err(ValidationError::duplicate(f, &e.name));
            }
        }
        for mp in &self.mount_points {
            check_name(&format!("{field}.mountPoints name"), &mp.name)?;
            if mp.path.is_empty() {
                return Err(ValidationError::missing(format!(
                    "{field}.mountPoints {:?} path",
                    mp.name
                )));
            }
        }
        for port in &self.ports {
            port.validate(&format!("{field}.ports"))?;
        }
        crate::isolator::validate_list(&format!("{field}.isolators"), &self.isolators)
    }

    pub(crate) fn normalize(&mut self) {
        for port in &mut self.ports {
            port.normalize();
        }
    }

    /// The value of an environment variable set by the app.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.environment
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value.as_str())
    }

    /// The `PATH` the app runs with: its own `PATH` variable (even when empty, as rkt keeps
    /// it), or [`crate::rootfs::DEFAULT_PATH`] when the app sets none. Used both to resolve
    /// `exec[0]` and as the app's environment.
    pub fn path_var(&self) -> String {
        self.env("PATH")
            .unwrap_or(crate::rootfs::DEFAULT_PATH)
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App {
            exec: vec!["/bin/sh".into()],
            user: "0".into(),
            group: "0".into(),
            ..App::default()
        }
    }

    fn err(a: &App) -> String {
        a.validate("app").unwrap_err().to_string()
    }

    #[test]
    fn valid_app_passes_even_with_relative_or_empty_exec() {
        assert!(app().validate("app").is_ok());
        let mut a = app();
        a.exec = vec!["sh".into()];
        assert!(a.validate("app").is_ok());
        a.exec.clear();
        assert!(a.validate("app").is_ok());
    }

    #[test]
    fn user_and_group_required() {
        let mut a = app();
        a.user.clear();
        assert_eq!(err(&a), "app.user must be set");
        let mut a = app();
        a.group.clear();
        assert_eq!(err(&a), "app.group must be set");
    }

    #[test]
    fn working_directory_absolute() {
        let mut a = app();
        a.working_directory = "srv".into();
        assert!(err(&a).contains("workingDirectory \"srv\""));
        a.working_directory = "/srv".into();
        assert!(a.validate("app").is_ok());
    }

    #[test]
    fn event_handlers() {
        let h = |n: &str| EventHandler {
            name: n.into(),
            exec: vec!["/x".into()],
        };
        let mut a = app();
        a.event_handlers = vec![h("pre-start"), h("post-stop")];
        assert!(a.validate("app").is_ok());
        a.event_handlers = vec![h("on-start")];
        assert!(err(&a).contains("\"on-start\""));
        a.event_handlers = vec![h("pre-start"), h("pre-start")];
        assert!(err(&a).starts_with("duplicate app.eventHandlers name"));
        a.event_handlers = vec![h("")];
        assert!(err(&a).contains("must be set"));
    }

    #[test]
    fn environment() {
        let e = |n: &str| EnvVar {
            name: n.into(),
            value: "v".into(),
        };
        let mut a = app();
        a.environment = vec![e("A"), e("b.c-d")];
        assert!(a.validate("app").is_ok());
        a.environment = vec![e("1A")];
        assert!(err(&a).contains("\"1A\""));
        a.environment = vec![e("A"), e("A")];
        assert!(err(&a).contains("duplicate"));
        assert_eq!(app().env("A"), None);
    }

    #[test]
    fn path_var() {
        let mut a = app();
        assert_eq!(a.path_var(), crate::rootfs::DEFAULT_PATH);
        a.environment = vec![EnvVar {
            name: "PATH".into(),
            value: "/opt/bin:/bin".into(),
        }];
        assert_eq!(a.path_var(), "/opt/bin:/bin");
        a.environment[0].value.clear();
        assert_eq!(a.path_var(), "", "an empty PATH is kept");
        a.environment[0].name = "path".into();
        assert_eq!(
            a.path_var(),
            crate::rootfs::DEFAULT_PATH,
            "names are case-sensitive"
        );
    }

    #[test]
    fn mount_points_and_ports() {
        let mut a = app();
        a.mount_points = vec![MountPoint {
            name: "Data".into(),
            path: "/data".into(),
            read_only: false,
        }];
        assert!(err(&a).contains("\"Data\""));
        a.mount_points[0].name = "data".into();
        a.mount_points[0].path.clear();
        assert!(err(&a).contains("path must be set"));
        a.mount_points[0].path = "/data".into();
        assert!(a.validate("app").is_ok());

        let p = |port, count| Port {
            name: "http".into(),
            protocol: "tcp".into(),
            port,
            count,
            socket_activated: false,
        };
        a.ports = vec![p(80, 1)];
        assert!(a.validate("app").is_ok());
        a.ports = vec![p(0, 1)];
        assert!(err(&a).contains("port \"0\""));
        a.ports = vec![p(70000, 1)];
        assert!(err(&a).contains("\"70000\""));
        a.ports = vec![p(65535, 2)];
        assert!(err(&a).contains("count \"2\""));
        a.ports = vec![p(65535, 1)];
        assert!(a.validate("app").is_ok());
    }
}
