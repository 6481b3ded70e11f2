//! Which networks a pod joins: the `--net` list and the CNI configurations it names
//! (docs/stage-contract.md, "Networking"). Pure apart from reading the configuration
//! directory.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The built-in networks, as rkt shipped them in its stage1 (`etc/rkt/net.d`). They are part of
/// this binary rather than files in the stage1 root, because that root is writable by the pod
/// and these confs decide which plugin runs as root on the host.
pub const BUILTIN: [(&str, &str); 2] = [
    (
        "99-default.conf",
        r#"{
	"cniVersion": "0.1.0",
	"name": "default",
	"type": "ptp",
	"ipMasq": true,
	"ipam": {
		"type": "host-local",
		"subnet": "172.16.28.0/24",
		"routes": [
			{ "dst": "0.0.0.0/0" }
		]
	}
}
"#,
    ),
    (
        "99-default-restricted.conf",
        r#"{
	"cniVersion": "0.1.0",
	"name": "default-restricted",
	"type": "ptp",
	"ipMasq": false,
	"ipam": {
		"type": "host-local",
		"subnet": "172.31.0.0/16"
	}
}
"#,
    ),
];

/// How the pod is networked, from stage1's `--net` entries.
#[derive(Debug, Clone, PartialEq)]
pub enum NetMode {
    /// The caller's network namespace.
    Host,
    /// A network namespace of its own with only `lo`.
    None,
    /// A network namespace of its own joined to CNI networks.
    Contained(NetList),
}

/// The named networks (or every defined one) and their CNI_ARGS.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetList {
    pub all: bool,
    /// `(name, args)` in the order given.
    pub named: Vec<(String, String)>,
}

impl NetList {
    fn wants(&self, name: &str) -> bool {
        self.all || self.named.iter().any(|(n, _)| n == name)
    }

    /// The CNI_ARGS given for `name` (`--net=name:IP=...`).
    pub fn args(&self, name: &str) -> String {
        self.named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    }
}

/// Parses `--net` entries (`name[:args]`), as rkt's NetList did.
pub fn parse_mode(entries: &[String]) -> Result<NetMode> {
    let mut list = NetList::default();
    let mut special = None;
    for entry in entries {
        let mut parts = entry.split(':');
        let name = parts.next().unwrap_or_default();
        let args = parts.next();
        if parts.next().is_some() {
            bail!("network {name:?} provided with invalid arguments: {entry:?} (use name:ARG=VALUE;ARG=VALUE)");
        }
        if name.is_empty() {
            bail!("netname must not be empty");
        }
        if list.named.iter().any(|(n, _)| n == name) || special == Some(name) {
            bail!("found duplicate netname {name:?}");
        }
        match name {
            "host" | "none" => {
                if args.is_some() {
                    bail!("arguments are not supported by special netname {name:?}");
                }
                special = Some(name);
            }
            "all" => {
                if args.is_some() {
                    bail!("arguments are not supported by special netname \"all\"");
                }
                list.all = true;
            }
            _ => list
                .named
                .push((name.to_string(), args.unwrap_or_default().to_string())),
        }
    }
    match special {
        Some(s) if list.all || !list.named.is_empty() => {
            bail!("--net={s} cannot be combined with other networks")
        }
        Some("host") => Ok(NetMode::Host),
        Some(_) => Ok(NetMode::None),
        None if !list.all && list.named.is_empty() => Ok(NetMode::Contained(NetList {
            all: false,
            named: vec![("default".into(), String::new())],
        })),
        None => Ok(NetMode::Contained(list)),
    }
}

/// One network configuration, as loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub name: String,
    /// The plugin, which is also its binary's name.
    pub plugin: String,
    /// The file name, which orders the networks (and names the copy in the pod's `net/`).
    pub file_name: String,
    /// Whether the plugin masquerades: such a network carries forwarded ports.
    pub ip_masq: bool,
    /// The bytes the plugin gets on stdin, unchanged.
    pub bytes: Vec<u8>,
}

/// Parses a configuration's bytes; `origin` names it in errors.
pub fn parse_conf(file_name: &str, bytes: &[u8], origin: &str) -> Result<NetConf> {
    let value: Value = serde_json::from_slice(bytes)
        .with_context(|| format!("error loading {origin}: not a JSON network configuration"))?;
    let field = |key: &str| -> Result<String> {
        match value.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => bail!("error loading {origin}: {key:?} must be a non-empty string"),
        }
    };
    let name = field("name")?;
    let plugin = field("type")?;
    // The plugin's name becomes a path below the plugin directories.
    if plugin.contains('/') || plugin == "." || plugin == ".." {
        bail!("error loading {origin}: plugin type {plugin:?} must be a plain file name");
    }
    Ok(NetConf {
        name,
        plugin,
        file_name: file_name.to_string(),
        ip_masq: value
            .get("ipMasq")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        bytes: bytes.to_vec(),
    })
}

/// The `*.conf` files of a directory, sorted by name (none when it does not exist).
fn conf_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".conf") && entry.path().is_file() {
            files.push((name, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Selects the networks `list` names from the user's confs in `user_dir` (read in file order,
/// the first of a name wins) over the built-in ones (a user conf of the same name replaces
/// them), ordered by file name. Warnings go to `warn`.
pub fn load(list: &NetList, user_dir: &Path, warn: &mut dyn FnMut(String)) -> Result<Vec<NetConf>> {
    let mut chosen: Vec<NetConf> = Vec::new();
    for (file, text) in BUILTIN {
        let conf = parse_conf(file, text.as_bytes(), file)?;
        if list.wants(&conf.name) {
            chosen.push(conf);
        }
    }
    let mut user: Vec<NetConf> = Vec::new();
    for (file, path) in conf_files(user_dir)? {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let conf = parse_conf(&file, &bytes, &path.display().to_string())?;
        if !list.wants(&conf.name) {
            continue;
        }
        if user.iter().any(|u| u.name == conf.name) {
            warn(format!(
                "{:?} network already defined, ignoring {}",
                conf.name,
                path.display()
            ));
            continue;
        }
        user.push(conf);
    }
    for conf in user {
        if let Some(i) = chosen.iter().position(|c| c.name == conf.name) {
            warn(format!(
                "overriding {:?} network with one from {}",
                conf.name,
                user_dir.display()
            ));
            chosen.remove(i);
        }
        chosen.push(conf);
    }
    chosen.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    let missing: Vec<&str> = list
        .named
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !chosen.iter().any(|c| c.name == *n))
        .collect();
    if !missing.is_empty() {
        bail!(
            "networks not found: {} (define them in {}/*.conf)",
            missing.join(", "),
            user_dir.display()
        );
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests;
