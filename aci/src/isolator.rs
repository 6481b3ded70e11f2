//! Typed views of the isolators appc 0.8.11 and rkt know, and their validation.
//!
//! Known isolators are checked the way the appc Go schema checks them (plus capability names
//! must look like `CAP_*`); isolators with other names are kept and never validated.
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::quantity::Quantity;
use crate::schema::{get_field, Isolator};
use crate::ValidationError;

pub const RESOURCE_CPU: &str = "resource/cpu";
pub const RESOURCE_MEMORY: &str = "resource/memory";
pub const RESOURCE_BLOCK_BANDWIDTH: &str = "resource/block-bandwidth";
pub const RESOURCE_BLOCK_IOPS: &str = "resource/block-iops";
pub const RESOURCE_NETWORK_BANDWIDTH: &str = "resource/network-bandwidth";
pub const LINUX_CAPABILITIES_RETAIN_SET: &str = "os/linux/capabilities-retain-set";
pub const LINUX_CAPABILITIES_REMOVE_SET: &str = "os/linux/capabilities-remove-set";
pub const LINUX_NO_NEW_PRIVILEGES: &str = "os/linux/no-new-privileges";
pub const LINUX_SECCOMP_RETAIN_SET: &str = "os/linux/seccomp-retain-set";
pub const LINUX_SECCOMP_REMOVE_SET: &str = "os/linux/seccomp-remove-set";
pub const LINUX_OOM_SCORE_ADJ: &str = "os/linux/oom-score-adj";
pub const LINUX_CPU_SHARES: &str = "os/linux/cpu-shares";
pub const LINUX_SELINUX_CONTEXT: &str = "os/linux/selinux-context";
pub const UNIX_SYSCTL: &str = "os/unix/sysctl";

/// Capabilities an app gets when it has neither a retain nor a remove set (appc ace spec).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETFCAP",
    "CAP_SYS_CHROOT",
];

/// Capability names in kernel order: the index is the capability number
/// (`linux/capability.h`). stage0 checks names against it and stage1 turns them into numbers.
pub const CAPABILITY_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability name, case-insensitive and with or without the `CAP_` prefix
/// (rkt passed names to systemd, which ignores case: `--caps-retain=cap_net_raw` works).
pub fn capability_number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITY_NAMES
        .iter()
        .position(|n| n.strip_prefix("CAP_") == Some(bare))
        .map(|i| i as u32)
}

/// The canonical spelling (`CAP_NET_RAW`) of a name [`capability_number`] accepts.
pub fn capability_name(name: &str) -> Option<&'static str> {
    capability_number(name).map(|n| CAPABILITY_NAMES[n as usize])
}

/// Every capability the app's `capabilities-retain-set` isolators name, in order and without
/// repeats, canonical where known and as written otherwise (a non-string entry as its JSON).
/// `None` when there is no retain set. This is the union over all retain-set isolators, which
/// is at least what any runtime grants, whichever of them it reads.
pub fn retained_capabilities(isolators: &[Isolator]) -> Option<Vec<String>> {
    let mut out: Option<Vec<String>> = None;
    for iso in isolators
        .iter()
        .filter(|i| i.name == LINUX_CAPABILITIES_RETAIN_SET)
    {
        let names = out.get_or_insert_with(Vec::new);
        let set = iso
            .value
            .as_object()
            .and_then(|o| get_field(o, "set"))
            .and_then(Value::as_array);
        for item in set.into_iter().flatten() {
            let name = match item.as_str() {
                Some(s) => capability_name(s).map_or_else(|| s.to_string(), str::to_string),
                None => item.to_string(),
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    out
}

/// Whether a capability name is in [`DEFAULT_CAPABILITIES`] (unknown names are not).
pub fn is_default_capability(name: &str) -> bool {
    capability_name(name).is_some_and(|c| DEFAULT_CAPABILITIES.contains(&c))
}

/// `{default, request, limit}` of the `resource/*` isolators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub default: bool,
    pub request: Option<Quantity>,
    pub limit: Option<Quantity>,
}

/// `{set, errno}` of the seccomp isolators; `errno` is `None` when empty or absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seccomp {
    pub set: Vec<String>,
    pub errno: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelinuxContext {
    pub user: String,
    pub role: String,
    pub type_: String,
    pub level: String,
}

/// The value of a known isolator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    Cpu(Resource),
    Memory(Resource),
    BlockBandwidth(Resource),
    BlockIops(Resource),
    NetworkBandwidth(Resource),
    CapabilitiesRetain(Vec<String>),
    CapabilitiesRemove(Vec<String>),
    NoNewPrivileges(bool),
    SeccompRetain(Seccomp),
    SeccompRemove(Seccomp),
    OomScoreAdj(i32),
    CpuShares(u32),
    SelinuxContext(SelinuxContext),
    Sysctl(BTreeMap<String, String>),
}

struct Ctx<'a> {
    name: &'a str,
    value: &'a Value,
}

impl Ctx<'_> {
    fn err(&self, key: &str, value: &Value, reason: impl Into<String>) -> ValidationError {
        let field = if key.is_empty() {
            format!("isolator {} value", self.name)
        } else {
            format!("isolator {} {key}", self.name)
        };
        let shown = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        ValidationError::invalid(field, shown, reason)
    }

    fn object(&self) -> Result<&Map<String, Value>, ValidationError> {
        self.value
            .as_object()
            .ok_or_else(|| self.err("", self.value, "must be a JSON object"))
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, ValidationError> {
        let obj = self.object()?;
        let Some(v) = get_field(obj, key) else {
            return Ok(Vec::new());
        };
        let list = v
            .as_array()
            .ok_or_else(|| self.err(key, v, "must be a list of strings"))?;
        list.iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.err(key, item, "must be a string"))
            })
            .collect()
    }

    fn string(&self, key: &str) -> Result<String, ValidationError> {
        match get_field(self.object()?, key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.err(key, other, "must be a string")),
        }
    }

    fn quantity(&self, key: &str) -> Result<Option<Quantity>, ValidationError> {
        let text = match get_field(self.object()?, key) {
            None => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(self.err(key, other, "must be a quantity such as 500m or 1Gi"))
            }
        };
        Quantity::parse(&text).map(Some).map_err(|_| {
            self.err(
                key,
                &Value::String(text.clone()),
                "must be a quantity such as 500m or 1Gi",
            )
        })
    }

    fn resource(&self) -> Result<Resource, ValidationError> {
        let default = match get_field(self.object()?, "default") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(self.err("default", other, "must be true or false")),
        };
        Ok(Resource {
            default,
            request: self.quantity("request")?,
            limit: self.quantity("limit")?,
        })
    }

    /// CPU and memory must not claim to be the default; the bandwidth and IOPS ones must, and
    /// take no request.
    fn checked_resource(&self, must_be_default: bool) -> Result<Resource, ValidationError> {
        let r = self.resource()?;
        if r.default != must_be_default {
            let reason = if must_be_default {
                "must be true"
            } else {
                "must be false"
            };
            return Err(self.err("default", &Value::Bool(r.default), reason));
        }
        if must_be_default && r.request.is_some() {
            let request = get_field(self.object()?, "request")
                .cloned()
                .unwrap_or_default();
            return Err(self.err("request", &request, "not supported by this resource"));
        }
        Ok(r)
    }

    fn capabilities(&self) -> Result<Vec<String>, ValidationError> {
        let set = self.strings("set")?;
        if set.is_empty() {
            return Err(self.err("set", &Value::Array(Vec::new()), "must not be empty"));
        }
        for cap in &set {
            let ok = cap.strip_prefix("CAP_").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            });
            if !ok {
                return Err(self.err(
                    "set",
                    &Value::String(cap.clone()),
                    "capability names look like CAP_NET_ADMIN",
                ));
            }
        }
        Ok(set)
    }

    fn seccomp(&self) -> Result<Seccomp, ValidationError> {
        let set = self.strings("set")?;
        if set.is_empty() {
            return Err(self.err("set", &Value::Array(Vec::new()), "must not be empty"));
        }
        let errno = self.string("errno")?;
        let valid = errno.is_empty()
            || (errno.starts_with('E')
                && errno
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        if !valid {
            return Err(self.err(
                "errno",
                &Value::String(errno),
                "must look like EPERM (an E then upper-case letters or digits)",
            ));
        }
        Ok(Seccomp {
            set,
            errno: (!errno.is_empty()).then_some(errno),
        })
    }

    fn int(&self, min: i64, max: i64) -> Result<i64, ValidationError> {
        let n = self
            .value
            .as_i64()
            .ok_or_else(|| self.err("", self.value, "must be an integer"))?;
        if !(min..=max).contains(&n) {
            return Err(self.err("", self.value, format!("must be between {min} and {max}")));
        }
        Ok(n)
    }

    fn selinux(&self) -> Result<SelinuxContext, ValidationError> {
        let ctx = SelinuxContext {
            user: self.string("user")?,
            role: self.string("role")?,
            type_: self.string("type")?,
            level: self.string("level")?,
        };
        for (key, v, colon_ok) in [
            ("user", &ctx.user, false),
            ("role", &ctx.role, false),
            ("type", &ctx.type_, false),
            ("level", &ctx.level, true),
        ] {
            if v.is_empty() || (!colon_ok && v.contains(':')) {
                return Err(self.err(
                    key,
                    &Value::String(v.clone()),
                    "must be non-empty (and without ':')",
                ));
            }
        }
        Ok(ctx)
    }

    fn sysctl(&self) -> Result<BTreeMap<String, String>, ValidationError> {
        self.object()?
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Null => Ok((k.clone(), String::new())),
                other => Err(self.err(k, other, "must be a string")),
            })
            .collect()
    }
}

/// The typed value of a known isolator, `Ok(None)` for names this crate does not know.
pub fn parse(iso: &Isolator) -> Result<Option<Known>, ValidationError> {
    let c = Ctx {
        name: &iso.name,
        value: &iso.value,
    };
    let known = match iso.name.as_str() {
        RESOURCE_CPU => Known::Cpu(c.checked_resource(false)?),
        RESOURCE_MEMORY => Known::Memory(c.checked_resource(false)?),
        RESOURCE_BLOCK_BANDWIDTH => Known::BlockBandwidth(c.checked_resource(true)?),
        RESOURCE_BLOCK_IOPS => Known::BlockIops(c.checked_resource(true)?),
        RESOURCE_NETWORK_BANDWIDTH => Known::NetworkBandwidth(c.checked_resource(true)?),
        LINUX_CAPABILITIES_RETAIN_SET => Known::CapabilitiesRetain(c.capabilities()?),
        LINUX_CAPABILITIES_REMOVE_SET => Known::CapabilitiesRemove(c.capabilities()?),
        LINUX_NO_NEW_PRIVILEGES => match &iso.value {
            Value::Bool(b) => Known::NoNewPrivileges(*b),
            other => return Err(c.err("", other, "must be true or false")),
        },
        LINUX_SECCOMP_RETAIN_SET => Known::SeccompRetain(c.seccomp()?),
        LINUX_SECCOMP_REMOVE_SET => Known::SeccompRemove(c.seccomp()?),
        LINUX_OOM_SCORE_ADJ => Known::OomScoreAdj(c.int(-1000, 1000)? as i32),
        LINUX_CPU_SHARES => Known::CpuShares(c.int(2, 262_144)? as u32),
        LINUX_SELINUX_CONTEXT => Known::SelinuxContext(c.selinux()?),
        UNIX_SYSCTL => Known::Sysctl(c.sysctl()?),
        _ => return Ok(None),
    };
    Ok(Some(known))
}

/// Validates one isolator: its name is an AC Identifier and, if known, its value is well formed.
pub fn validate(iso: &Isolator) -> Result<(), ValidationError> {
    crate::schema::check_isolator_name(&iso.name)?;
    parse(iso).map(|_| ())
}

/// Validates each isolator on its own (pod-level isolators, which Go reads as a plain list).
pub(crate) fn validate_each(field: &str, list: &[Isolator]) -> Result<(), ValidationError> {
    for iso in list {
        validate(iso).map_err(|e| prefix(field, e))?;
    }
    Ok(())
}

/// The list rules of an app's isolators: each valid; seccomp, oom-score-adj, cpu-shares,
/// selinux-context and sysctl at most once; seccomp retain and remove sets exclusive.
pub fn validate_list(field: &str, list: &[Isolator]) -> Result<(), ValidationError> {
    validate_each(field, list)?;
    let single = [
        LINUX_SECCOMP_RETAIN_SET,
        LINUX_SECCOMP_REMOVE_SET,
        LINUX_OOM_SCORE_ADJ,
        LINUX_CPU_SHARES,
        LINUX_SELINUX_CONTEXT,
        UNIX_SYSCTL,
    ];
    for (i, iso) in list.iter().enumerate() {
        let earlier = &list[..i];
        if single.contains(&iso.name.as_str()) && earlier.iter().any(|e| e.name == iso.name) {
            return Err(ValidationError::duplicate(
                format!("{field} name"),
                &iso.name,
            ));
        }
        let conflict = match iso.name.as_str() {
            LINUX_SECCOMP_RETAIN_SET => Some(LINUX_SECCOMP_REMOVE_SET),
            LINUX_SECCOMP_REMOVE_SET => Some(LINUX_SECCOMP_RETAIN_SET),
            _ => None,
        };
        if let Some(other) = conflict.filter(|o| earlier.iter().any(|e| e.name == *o)) {
            return Err(ValidationError::invalid(
                format!("{field} name"),
                &iso.name,
                format!("cannot be combined with {other}"),
            ));
        }
    }
    Ok(())
}

fn prefix(field: &str, e: ValidationError) -> ValidationError {
    match e {
        ValidationError::Invalid {
            field: f,
            value,
            reason,
        } => ValidationError::Invalid {
            field: format!("{field}: {f}"),
            value,
            reason,
        },
        other => other,
    }
}

/// The CPU limit in millicores of a `resource/cpu` isolator; `None` for other isolators or
/// when no limit is given.
pub fn cpu_limit_milli(iso: &Isolator) -> Result<Option<i64>, ValidationError> {
    match parse(iso)? {
        Some(Known::Cpu(r)) => Ok(r.limit.map(|q| q.milli_value())),
        _ => Ok(None),
    }
}

/// The memory limit in bytes of a `resource/memory` isolator; `None` for other isolators or
/// when no limit is given.
pub fn memory_limit_bytes(iso: &Isolator) -> Result<Option<i64>, ValidationError> {
    match parse(iso)? {
        Some(Known::Memory(r)) => Ok(r.limit.map(|q| q.value())),
        _ => Ok(None),
    }
}

/// Smallest memory limit rkt accepts from `--memory` (smaller ones are most likely `16m`,
/// milli-bytes, written for `16M`).
pub const MIN_MEMORY_LIMIT: i64 = 4096;

/// Builds the isolator rkt adds for `--cpu` or `--memory`: `{"default":false,"request":R,
/// "limit":L}` in that key order, with canonical quantities. The request defaults to the
/// limit, as rkt's `NewResourceMemoryIsolator(s, s)` does, so it is always written.
pub fn resource(
    name: &str,
    request: Option<&str>,
    limit: &str,
) -> Result<Isolator, ValidationError> {
    if name != RESOURCE_CPU && name != RESOURCE_MEMORY {
        return Err(ValidationError::invalid(
            "resource isolator name",
            name,
            format!("must be {RESOURCE_CPU} or {RESOURCE_MEMORY}"),
        ));
    }
    let what = if name == RESOURCE_CPU {
        "cpu"
    } else {
        "memory"
    };
    let limit_q = Quantity::parse(limit).map_err(|_| {
        ValidationError::invalid(
            format!("{what} limit"),
            limit,
            "must be a quantity such as 500m or 1Gi",
        )
    })?;
    let request_q = match request {
        Some(r) => Quantity::parse(r).map_err(|_| {
            ValidationError::invalid(
                format!("{what} request"),
                r,
                "must be a quantity such as 500m or 1Gi",
            )
        })?,
        None => limit_q,
    };
    if name == RESOURCE_MEMORY && limit_q.value() < MIN_MEMORY_LIMIT {
        return Err(ValidationError::invalid(
            "memory limit",
            limit,
            format!(
                "{} bytes is too low, use a reasonable value such as 16M",
                limit_q.value()
            ),
        ));
    }
    // Keys in rkt's order (appc's `resourceValue` struct): default, request, limit. serde_json
    // keeps insertion order (its `preserve_order` feature), so this is also the written order.
    let mut value = Map::new();
    value.insert("default".into(), Value::Bool(false));
    value.insert("request".into(), Value::String(request_q.to_string()));
    value.insert("limit".into(), Value::String(limit_q.to_string()));
    Ok(Isolator {
        name: name.to_string(),
        value: Value::Object(value),
    })
}

#[cfg(test)]
#[path = "isolator_tests.rs"]
mod tests;
