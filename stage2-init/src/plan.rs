//! The init plan: what stage1 tells stage2-init to run.
//!
//! stage1 writes the plan (normally to [`DEFAULT_PLAN_PATH`](crate::contract::DEFAULT_PLAN_PATH))
//! and execs `/stage2-init <plan-file>`. The format is binary-safe: a sequence of fields, each
//! terminated by a NUL byte, so paths, arguments and environment entries may hold any byte but
//! NUL. The first field is the magic `rkt-stage2-plan-v1`. Then come directives: a key field
//! followed by its value fields. `COUNT` is a decimal number of value fields that follow it.
//!
//! ```text
//! rkt-stage2-plan-v1␀                           magic
//! stop-timeout␀ 10␀                             ┐ pod level, optional, only before
//! interactive␀ 0␀                               │ the first `app`
//! verbose␀ 0␀                                   │ (verbose: see below)
//! rkt-dir␀ /rkt␀                                ┘ (rkt-dir: for tests outside a pod)
//! app␀ web␀                                     ┐ one block per app, until the next `app`
//!   root␀ /opt/stage2/web/rootfs␀               │ required, absolute (chroot target)
//!   uid␀ 1000␀  gid␀ 1000␀                      │ required, numeric
//!   groups␀ 2␀ 10␀ 20␀                          │ optional: COUNT gid…
//!   cwd␀ /srv␀                                  │ required, absolute inside the root
//!   env␀ 2␀ PATH=/bin␀ AC_APP_NAME=web␀         │ optional: COUNT K=V… (the whole environment)
//!   exec␀ 2␀ /bin/httpd␀ -f␀                    │ required: COUNT ≥ 1, arg0 absolute
//!   caps␀ 2␀ 0␀ 10␀                             │ optional: COUNT capability numbers (see below)
//!   pre-start␀ 1␀ /bin/prepare␀                 │ optional, may repeat: run in order as root
//!   post-stop␀ 1␀ /bin/cleanup␀                 │ optional, may repeat: run in order as root
//!   cgroup-fds␀ 2␀ 5␀ 6␀                        │ optional: COUNT open descriptors (see below)
//!   cgroup-v2␀ 7␀ 8␀                            │ optional: cgroup2 directory and procs fds
//!   oom-score-adj␀ -500␀                        │ optional: -1000 to 1000
//!   no-new-privileges␀ 1␀                       │ optional: 0 or 1 (default 0)
//!   seccomp␀ /rkt/run/seccomp/web␀              ┘ optional: BPF programs to load (see below)
//! app␀ worker␀ …
//! ```
//!
//! `verbose` (`0` or `1`, default `0`): with `1`, stage2-init also prints informational lines
//! (an app failed and the pod stops, a signal stops the pod, the stop timeout ran out, a handler
//! failed). With `0` it prints only real errors (an app that cannot be started, a status file
//! that cannot be written, a bad plan), so a normal run shows the apps' output undecorated.
//!
//! `caps`: the Linux capabilities the app keeps, by number (`0` is CAP_CHOWN, `21`
//! CAP_SYS_ADMIN, `40` CAP_CHECKPOINT_RESTORE; at most 63), in any order, repeats allowed;
//! `caps␀ 0␀` keeps none. Without `caps` the app keeps whatever stage2-init has (the format
//! before the directive existed). With it, every other capability is dropped from the
//! bounding set; a root app gets exactly these as its permitted, effective and inheritable
//! sets (as far as stage2-init holds them); an app with another uid has none permitted or
//! effective (setuid clears them), loses all but these from its inheritable set and every
//! ambient capability. The app's pre-start and post-stop handlers get the same list.
//!
//! `cgroup-fds`: descriptors stage2-init inherited from stage1, each open for writing on the
//! v1 `tasks` file of one of the app's cgroups (a single-threaded process joins through it
//! without the global lock and RCU grace period that `cgroup.procs` costs); every process of the app (main, handlers,
//! entered commands) writes `0` to each before anything else. `cgroup-v2 DIR PROCS`: every
//! process of the app is created in the cgroup2 directory open as `DIR` (clone3
//! CLONE_INTO_CGROUP, which spares the kernel an RCU grace period a move costs), or writes
//! `0` to `PROCS` where the kernel cannot do that. `oom-score-adj` is written to
//! `/proc/self/oom_score_adj` right after. `no-new-privileges␀ 1␀` sets PR_SET_NO_NEW_PRIVS
//! before `execve`. `seccomp` names a file of classic BPF programs (for each: a native-endian
//! u32 instruction count, then that many 8-byte `struct sock_filter`s), read once at start
//! and loaded in file order just before `execve`: before the capability sets narrow when
//! no-new-privileges is off (the kernel then needs CAP_SYS_ADMIN), after them when it is on.
//!
//! Every deviation (unknown or repeated key, missing required key, bad number or capability,
//! truncated input, no apps, duplicate or invalid app name) is a [`PlanError`]; stage2-init then starts nothing.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::contract::{plan_key as key, DEFAULT_RKT_DIR, DEFAULT_STOP_TIMEOUT_SECS, PLAN_MAGIC};

/// A parsed and validated plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The `rkt` directory holding `status/` and `supervisor-status`.
    pub rkt_dir: PathBuf,
    /// Grace period between the polite signal and SIGKILL when the pod stops.
    pub stop_timeout: Duration,
    /// The apps share stage2-init's terminal and session instead of getting their own session.
    pub interactive: bool,
    /// Print informational lines too, not only errors.
    pub verbose: bool,
    /// In plan order, at least one, names unique.
    pub apps: Vec<AppPlan>,
}

/// One app of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPlan {
    /// An AC Name (`^[a-z0-9]+(-[a-z0-9]+)*$`), also the name of its status file.
    pub name: String,
    /// Absolute path of the app's root filesystem, the chroot target.
    pub root: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary gids.
    pub groups: Vec<u32>,
    /// Absolute working directory inside `root`.
    pub cwd: PathBuf,
    /// The complete environment, `K=V` entries.
    pub env: Vec<OsString>,
    /// The main process; `exec[0]` is an absolute path inside `root`.
    pub exec: Vec<OsString>,
    /// Run in order, as root, before the main process.
    pub pre_start: Vec<Vec<OsString>>,
    /// Run in order, as root, after the main process ended.
    pub post_stop: Vec<Vec<OsString>>,
    /// The capabilities the app and its handlers keep; `None` leaves them alone.
    pub caps: Option<CapSet>,
    /// Descriptors stage1 left open on `tasks` of the app's v1 cgroups.
    pub cgroup_fds: Vec<i32>,
    /// The app's cgroup2 directory and `cgroup.procs` descriptors.
    pub cgroup_v2: Option<(i32, i32)>,
    pub oom_score_adj: Option<i32>,
    pub no_new_privileges: bool,
    /// The file with the BPF programs of the app's seccomp filter.
    pub seccomp: Option<PathBuf>,
}

/// A set of Linux capabilities by number, 0 to [`CapSet::MAX`]: bit `n` stands for
/// capability `n`, as in the kernel's 64-bit capability masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSet(u64);

impl CapSet {
    /// The highest capability number a set can hold.
    pub const MAX: u32 = 63;

    /// `None` for a number above [`CapSet::MAX`].
    pub fn with(self, cap: u32) -> Option<Self> {
        (cap <= Self::MAX).then(|| Self(self.0 | 1 << cap))
    }

    pub fn bits(self) -> u64 {
        self.0
    }
}

/// Why a plan was rejected; shown as `stage2-init: bad plan <file>: <this>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The input ends without a NUL, or a directive has fewer fields than it needs.
    Truncated {
        expected: String,
    },
    BadMagic {
        found: String,
    },
    UnknownKey {
        key: String,
        field: usize,
    },
    /// A pod-level key after the first `app`.
    PodKeyInApp {
        key: String,
        app: String,
    },
    DuplicateKey {
        key: String,
        app: Option<String>,
    },
    BadNumber {
        key: String,
        value: String,
    },
    BadFlag {
        key: String,
        value: String,
    },
    MissingKey {
        key: &'static str,
        app: String,
    },
    NotAbsolute {
        key: &'static str,
        app: Option<String>,
        path: PathBuf,
    },
    EmptyCommand {
        key: &'static str,
        app: String,
    },
    BadEnv {
        app: String,
        entry: String,
    },
    /// A `caps` value that is not a number from 0 to [`CapSet::MAX`].
    BadCap {
        app: String,
        value: String,
    },
    BadAppName {
        name: String,
    },
    DuplicateApp {
        name: String,
    },
    NoApps,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { expected } => write!(f, "truncated input: expected {expected}"),
            Self::BadMagic { found } => {
                write!(f, "not a plan: first field is {found:?}, expected {PLAN_MAGIC:?}")
            }
            Self::UnknownKey { key, field } => write!(f, "unknown key {key:?} at field {field}"),
            Self::PodKeyInApp { key, app } => write!(
                f,
                "pod-level key {key:?} inside app {app:?} (pod-level keys come before the first app)"
            ),
            Self::DuplicateKey { key, app: None } => write!(f, "duplicate pod-level key {key:?}"),
            Self::DuplicateKey { key, app: Some(app) } => {
                write!(f, "app {app:?}: duplicate key {key:?}")
            }
            Self::BadNumber { key, value } => {
                write!(f, "{key}: {value:?} is not a decimal number in range")
            }
            Self::BadFlag { key, value } => write!(f, "{key}: {value:?} is neither 0 nor 1"),
            Self::MissingKey { key, app } => write!(f, "app {app:?}: missing key {key:?}"),
            Self::NotAbsolute { key, app: None, path } => {
                write!(f, "{key}: {} is not an absolute path", path.display())
            }
            Self::NotAbsolute { key, app: Some(app), path } => write!(
                f,
                "app {app:?}: {key}: {} is not an absolute path",
                path.display()
            ),
            Self::EmptyCommand { key, app } => {
                write!(f, "app {app:?}: {key} needs at least one argument")
            }
            Self::BadEnv { app, entry } => {
                write!(f, "app {app:?}: env entry {entry:?} is not K=V")
            }
            Self::BadCap { app, value } => write!(
                f,
                "app {app:?}: caps: {value:?} is not a capability number (0 to {})",
                CapSet::MAX
            ),
            Self::BadAppName { name } => write!(
                f,
                "app name {name:?} is not an AC Name (lower-case letters, digits and inner dashes)"
            ),
            Self::DuplicateApp { name } => write!(f, "duplicate app {name:?}"),
            Self::NoApps => write!(f, "no apps"),
        }
    }
}

/// Parses and validates a plan file's contents.
pub fn parse(input: &[u8]) -> Result<Plan, PlanError> {
    let mut fields = Fields::split(input)?;
    let magic = fields.next("the magic")?;
    if magic != PLAN_MAGIC.as_bytes() {
        return Err(PlanError::BadMagic {
            found: lossy(magic),
        });
    }
    let mut pod = PodBuilder::default();
    let mut apps: Vec<AppPlan> = Vec::new();
    let mut current: Option<AppBuilder> = None;
    while let Some((field, raw_key)) = fields.next_key() {
        let key_name = lossy(raw_key);
        match (key_name.as_str(), current.as_mut()) {
            (key::APP, _) => {
                if let Some(app) = current.take() {
                    push_app(&mut apps, app.finish()?)?;
                }
                current = Some(AppBuilder::new(fields.next("an app name")?)?);
            }
            (key::STOP_TIMEOUT | key::INTERACTIVE | key::VERBOSE | key::RKT_DIR, Some(app)) => {
                return Err(PlanError::PodKeyInApp {
                    key: key_name,
                    app: app.name.clone(),
                })
            }
            (_, None) => pod.set(&key_name, field, &mut fields)?,
            (_, Some(app)) => app.set(&key_name, field, &mut fields)?,
        }
    }
    match current {
        Some(app) => push_app(&mut apps, app.finish()?)?,
        None => return Err(PlanError::NoApps),
    }
    Ok(Plan {
        rkt_dir: pod
            .rkt_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RKT_DIR)),
        stop_timeout: Duration::from_secs(
            pod.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT_SECS).into(),
        ),
        interactive: pod.interactive.unwrap_or(false),
        verbose: pod.verbose.unwrap_or(false),
        apps,
    })
}

fn push_app(apps: &mut Vec<AppPlan>, app: AppPlan) -> Result<(), PlanError> {
    if apps.iter().any(|a| a.name == app.name) {
        return Err(PlanError::DuplicateApp { name: app.name });
    }
    apps.push(app);
    Ok(())
}

/// The NUL-terminated fields of the input and a cursor over them.
struct Fields<'a> {
    fields: Vec<&'a [u8]>,
    pos: usize,
}

impl<'a> Fields<'a> {
    fn split(input: &'a [u8]) -> Result<Self, PlanError> {
        let Some(body) = input.strip_suffix(b"\0") else {
            let expected = if input.is_empty() {
                "the magic"
            } else {
                "a NUL after the last field"
            };
            return Err(PlanError::Truncated {
                expected: expected.to_owned(),
            });
        };
        Ok(Self {
            fields: body.split(|b| *b == 0).collect(),
            pos: 0,
        })
    }

    /// The next key and its 1-based field number, or `None` at the end of the input.
    fn next_key(&mut self) -> Option<(usize, &'a [u8])> {
        let field = self.fields.get(self.pos)?;
        self.pos += 1;
        Some((self.pos, field))
    }

    fn next(&mut self, expected: &str) -> Result<&'a [u8], PlanError> {
        let field = self
            .fields
            .get(self.pos)
            .ok_or_else(|| PlanError::Truncated {
                expected: expected.to_owned(),
            })?;
        self.pos += 1;
        Ok(field)
    }

    fn number(&mut self, key: &str) -> Result<u32, PlanError> {
        let value = self.next(&format!("a number after {key:?}"))?;
        parse_decimal(value).ok_or_else(|| PlanError::BadNumber {
            key: key.to_owned(),
            value: lossy(value),
        })
    }

    /// `0` or `1`.
    fn flag(&mut self, key: &str) -> Result<bool, PlanError> {
        let value = self.next(&format!("0 or 1 after {key:?}"))?;
        match value {
            b"0" => Ok(false),
            b"1" => Ok(true),
            _ => Err(PlanError::BadFlag {
                key: key.to_owned(),
                value: lossy(value),
            }),
        }
    }

    fn path(&mut self, key: &str) -> Result<PathBuf, PlanError> {
        Ok(os(self.next(&format!("a path after {key:?}"))?).into())
    }

    /// `COUNT` followed by that many fields.
    fn list(&mut self, key: &str) -> Result<Vec<OsString>, PlanError> {
        let count = self.number(key)?;
        // Counting against the fields left also bounds the allocation by the input size.
        (0..count)
            .map(|i| Ok(os(self.next(&format!("{key} value {} of {count}", i + 1))?)))
            .collect()
    }
}

/// Plain ASCII digits only: no sign, no spaces, no empty string.
fn parse_decimal(value: &[u8]) -> Option<u32> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn os(field: &[u8]) -> OsString {
    OsString::from_vec(field.to_vec())
}

fn lossy(field: &[u8]) -> String {
    String::from_utf8_lossy(field).into_owned()
}

/// Stores `value` into an `Option` that must still be empty.
fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    key: &str,
    app: Option<&str>,
) -> Result<(), PlanError> {
    if slot.is_some() {
        return Err(PlanError::DuplicateKey {
            key: key.to_owned(),
            app: app.map(str::to_owned),
        });
    }
    *slot = Some(value);
    Ok(())
}

#[derive(Default)]
struct PodBuilder {
    stop_timeout: Option<u32>,
    interactive: Option<bool>,
    verbose: Option<bool>,
    rkt_dir: Option<PathBuf>,
}

impl PodBuilder {
    fn set(&mut self, name: &str, field: usize, fields: &mut Fields<'_>) -> Result<(), PlanError> {
        match name {
            key::STOP_TIMEOUT => {
                let secs = fields.number(name)?;
                set_once(&mut self.stop_timeout, secs, name, None)
            }
            key::INTERACTIVE => set_once(&mut self.interactive, fields.flag(name)?, name, None),
            key::VERBOSE => set_once(&mut self.verbose, fields.flag(name)?, name, None),
            key::RKT_DIR => {
                let path = fields.path(name)?;
                if !path.is_absolute() {
                    return Err(PlanError::NotAbsolute {
                        key: key::RKT_DIR,
                        app: None,
                        path,
                    });
                }
                set_once(&mut self.rkt_dir, path, name, None)
            }
            _ => Err(PlanError::UnknownKey {
                key: name.to_owned(),
                field,
            }),
        }
    }
}

struct AppBuilder {
    name: String,
    root: Option<PathBuf>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<u32>>,
    cwd: Option<PathBuf>,
    env: Option<Vec<OsString>>,
    exec: Option<Vec<OsString>>,
    pre_start: Vec<Vec<OsString>>,
    post_stop: Vec<Vec<OsString>>,
    caps: Option<CapSet>,
    cgroup_fds: Option<Vec<i32>>,
    cgroup_v2: Option<(i32, i32)>,
    oom_score_adj: Option<i32>,
    no_new_privileges: Option<bool>,
    seccomp: Option<PathBuf>,
}

impl AppBuilder {
    fn new(name: &[u8]) -> Result<Self, PlanError> {
        let name = lossy(name);
        if !is_ac_name(&name) {
            return Err(PlanError::BadAppName { name });
        }
        Ok(Self {
            name,
            root: None,
            uid: None,
            gid: None,
            groups: None,
            cwd: None,
            env: None,
            exec: None,
            pre_start: Vec::new(),
            post_stop: Vec::new(),
            caps: None,
            cgroup_fds: None,
            cgroup_v2: None,
            oom_score_adj: None,
            no_new_privileges: None,
            seccomp: None,
        })
    }

    fn set(&mut self, name: &str, field: usize, fields: &mut Fields<'_>) -> Result<(), PlanError> {
        let app = Some(self.name.as_str());
        match name {
            key::ROOT => set_once(&mut self.root, fields.path(name)?, name, app),
            key::UID => set_once(&mut self.uid, fields.number(name)?, name, app),
            key::GID => set_once(&mut self.gid, fields.number(name)?, name, app),
            key::GROUPS => {
                let count = fields.number(name)?;
                let groups = (0..count)
                    .map(|_| fields.number(name))
                    .collect::<Result<_, _>>()?;
                set_once(&mut self.groups, groups, name, app)
            }
            key::CWD => set_once(&mut self.cwd, fields.path(name)?, name, app),
            key::ENV => set_once(&mut self.env, fields.list(name)?, name, app),
            key::EXEC => set_once(&mut self.exec, fields.list(name)?, name, app),
            key::PRE_START => {
                self.pre_start.push(fields.list(name)?);
                Ok(())
            }
            key::POST_STOP => {
                self.post_stop.push(fields.list(name)?);
                Ok(())
            }
            key::CAPS => {
                let caps = self.caps_value(fields)?;
                set_once(&mut self.caps, caps, name, app)
            }
            key::CGROUP_FDS => {
                let count = fields.number(name)?;
                let fds = (0..count)
                    .map(|_| fields.number(name).map(|n| n as i32))
                    .collect::<Result<_, _>>()?;
                set_once(&mut self.cgroup_fds, fds, name, app)
            }
            key::CGROUP_V2 => {
                let dir = fields.number(name)? as i32;
                let procs = fields.number(name)? as i32;
                set_once(&mut self.cgroup_v2, (dir, procs), name, app)
            }
            key::OOM_SCORE_ADJ => {
                let value = fields.next(&format!("a number after {name:?}"))?;
                let adj = parse_oom_score_adj(value).ok_or_else(|| PlanError::BadNumber {
                    key: name.to_owned(),
                    value: lossy(value),
                })?;
                set_once(&mut self.oom_score_adj, adj, name, app)
            }
            key::NO_NEW_PRIVILEGES => {
                set_once(&mut self.no_new_privileges, fields.flag(name)?, name, app)
            }
            key::SECCOMP => set_once(&mut self.seccomp, fields.path(name)?, name, app),
            _ => Err(PlanError::UnknownKey {
                key: name.to_owned(),
                field,
            }),
        }
    }

    /// `COUNT` capability numbers.
    fn caps_value(&self, fields: &mut Fields<'_>) -> Result<CapSet, PlanError> {
        let count = fields.number(key::CAPS)?;
        let mut caps = CapSet::default();
        for i in 0..count {
            let value = fields.next(&format!("caps value {} of {count}", i + 1))?;
            caps = parse_decimal(value)
                .and_then(|cap| caps.with(cap))
                .ok_or_else(|| PlanError::BadCap {
                    app: self.name.clone(),
                    value: lossy(value),
                })?;
        }
        Ok(caps)
    }

    fn finish(self) -> Result<AppPlan, PlanError> {
        let name = self.name;
        let missing = |key| PlanError::MissingKey {
            key,
            app: name.clone(),
        };
        let root = self.root.ok_or_else(|| missing(key::ROOT))?;
        let uid = self.uid.ok_or_else(|| missing(key::UID))?;
        let gid = self.gid.ok_or_else(|| missing(key::GID))?;
        let cwd = self.cwd.ok_or_else(|| missing(key::CWD))?;
        let exec = self.exec.ok_or_else(|| missing(key::EXEC))?;
        let absolute = |key, path: &PathBuf| {
            if path.is_absolute() {
                Ok(())
            } else {
                Err(PlanError::NotAbsolute {
                    key,
                    app: Some(name.clone()),
                    path: path.clone(),
                })
            }
        };
        absolute(key::ROOT, &root)?;
        absolute(key::CWD, &cwd)?;
        let commands = std::iter::once((key::EXEC, &exec))
            .chain(self.pre_start.iter().map(|c| (key::PRE_START, c)))
            .chain(self.post_stop.iter().map(|c| (key::POST_STOP, c)));
        for (key, command) in commands {
            let arg0 = command.first().ok_or_else(|| PlanError::EmptyCommand {
                key,
                app: name.clone(),
            })?;
            absolute(key, &PathBuf::from(arg0))?;
        }
        let env = self.env.unwrap_or_default();
        if let Some(entry) = env.iter().find(|e| !is_env_entry(e.as_encoded_bytes())) {
            return Err(PlanError::BadEnv {
                app: name,
                entry: entry.to_string_lossy().into_owned(),
            });
        }
        Ok(AppPlan {
            name,
            root,
            uid,
            gid,
            groups: self.groups.unwrap_or_default(),
            cwd,
            env,
            exec,
            pre_start: self.pre_start,
            post_stop: self.post_stop,
            caps: self.caps,
            cgroup_fds: self.cgroup_fds.unwrap_or_default(),
            cgroup_v2: self.cgroup_v2,
            oom_score_adj: self.oom_score_adj,
            no_new_privileges: self.no_new_privileges.unwrap_or(false),
            seccomp: self.seccomp,
        })
    }
}

/// -1000 to 1000, an optional `-` then plain digits.
fn parse_oom_score_adj(value: &[u8]) -> Option<i32> {
    let (negative, digits) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let n = i32::try_from(parse_decimal(digits)?).ok()?;
    (n <= 1000).then_some(if negative { -n } else { n })
}

/// `K=V` with a non-empty `K`.
fn is_env_entry(entry: &[u8]) -> bool {
    entry
        .iter()
        .position(|b| *b == b'=')
        .is_some_and(|eq| eq > 0)
}

/// AC Name, `^[a-z0-9]+(-[a-z0-9]+)*$` (appc spec): app names become status file names, so
/// this also keeps `/`, `.` and `..` out of them.
fn is_ac_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests;
