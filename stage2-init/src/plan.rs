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
//! rkt-dir␀ /rkt␀                                ┘ (rkt-dir: for tests outside a pod)
//! app␀ web␀                                     ┐ one block per app, until the next `app`
//!   root␀ /opt/stage2/web/rootfs␀               │ required, absolute (chroot target)
//!   uid␀ 1000␀  gid␀ 1000␀                      │ required, numeric
//!   groups␀ 2␀ 10␀ 20␀                          │ optional: COUNT gid…
//!   cwd␀ /srv␀                                  │ required, absolute inside the root
//!   env␀ 2␀ PATH=/bin␀ AC_APP_NAME=web␀         │ optional: COUNT K=V… (the whole environment)
//!   exec␀ 2␀ /bin/httpd␀ -f␀                    │ required: COUNT ≥ 1, arg0 absolute
//!   pre-start␀ 1␀ /bin/prepare␀                 │ optional, may repeat: run in order as root
//!   post-stop␀ 1␀ /bin/cleanup␀                 ┘ optional, may repeat: run in order as root
//! app␀ worker␀ …
//! ```
//!
//! Every deviation (unknown or repeated key, missing required key, bad number, truncated input,
//! no apps, duplicate or invalid app name) is a [`PlanError`]; stage2-init then starts nothing.

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
            (key::STOP_TIMEOUT | key::INTERACTIVE | key::RKT_DIR, Some(app)) => {
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
    rkt_dir: Option<PathBuf>,
}

impl PodBuilder {
    fn set(&mut self, name: &str, field: usize, fields: &mut Fields<'_>) -> Result<(), PlanError> {
        match name {
            key::STOP_TIMEOUT => {
                let secs = fields.number(name)?;
                set_once(&mut self.stop_timeout, secs, name, None)
            }
            key::INTERACTIVE => {
                let value = fields.next("0 or 1 after \"interactive\"")?;
                let flag = match value {
                    b"0" => false,
                    b"1" => true,
                    _ => {
                        return Err(PlanError::BadFlag {
                            key: name.to_owned(),
                            value: lossy(value),
                        })
                    }
                };
                set_once(&mut self.interactive, flag, name, None)
            }
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
            _ => Err(PlanError::UnknownKey {
                key: name.to_owned(),
                field,
            }),
        }
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
        })
    }
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
mod tests {
    use super::*;

    /// Encodes fields the way stage1 writes them: each followed by a NUL.
    fn encode<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        for field in fields {
            out.extend_from_slice(field);
            out.push(0);
        }
        out
    }

    /// The magic, then `text` split on whitespace, one field per word.
    fn encode_words(text: &str) -> Vec<u8> {
        let words = text.split_whitespace().map(str::as_bytes);
        encode(std::iter::once(PLAN_MAGIC.as_bytes()).chain(words))
    }

    fn parse_words(text: &str) -> Result<Plan, PlanError> {
        parse(&encode_words(text))
    }

    fn err(text: &str) -> PlanError {
        parse_words(text).expect_err("plan should be rejected")
    }

    const MINIMAL: &str = "app a root /r uid 0 gid 0 cwd / exec 1 /bin/true";

    fn os_vec(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn full_plan() {
        let plan = parse_words(
            "stop-timeout 3 interactive 1 rkt-dir /tmp/rkt
             app web root /opt/stage2/web/rootfs uid 1000 gid 100 groups 2 10 20 cwd /srv
               env 2 PATH=/bin EMPTY= exec 2 /bin/httpd -f
               pre-start 1 /bin/a pre-start 2 /bin/b x post-stop 1 /bin/c
             app db root /r2 uid 0 gid 0 cwd / exec 1 /db",
        )
        .expect("valid plan");
        assert_eq!(plan.rkt_dir, PathBuf::from("/tmp/rkt"));
        assert_eq!(plan.stop_timeout, Duration::from_secs(3));
        assert!(plan.interactive);
        assert_eq!(plan.apps.len(), 2);
        let web = &plan.apps[0];
        assert_eq!(web.name, "web");
        assert_eq!(web.root, PathBuf::from("/opt/stage2/web/rootfs"));
        assert_eq!((web.uid, web.gid), (1000, 100));
        assert_eq!(web.groups, vec![10, 20]);
        assert_eq!(web.cwd, PathBuf::from("/srv"));
        assert_eq!(web.env, os_vec(&["PATH=/bin", "EMPTY="]));
        assert_eq!(web.exec, os_vec(&["/bin/httpd", "-f"]));
        assert_eq!(
            web.pre_start,
            vec![os_vec(&["/bin/a"]), os_vec(&["/bin/b", "x"])]
        );
        assert_eq!(web.post_stop, vec![os_vec(&["/bin/c"])]);
        let db = &plan.apps[1];
        assert_eq!(db.name, "db");
        assert!(db.groups.is_empty() && db.env.is_empty() && db.pre_start.is_empty());
    }

    #[test]
    fn defaults() {
        let plan = parse_words(MINIMAL).expect("valid plan");
        assert_eq!(plan.rkt_dir, PathBuf::from(DEFAULT_RKT_DIR));
        let default_timeout = Duration::from_secs(DEFAULT_STOP_TIMEOUT_SECS.into());
        assert_eq!(plan.stop_timeout, default_timeout);
        assert!(!plan.interactive);
    }

    #[test]
    fn fields_are_binary_safe() {
        let fields: [&[u8]; 16] = [
            PLAN_MAGIC.as_bytes(),
            b"app",
            b"a",
            b"root",
            b"/r\xff\x01 oot",
            b"uid",
            b"0",
            b"gid",
            b"0",
            b"cwd",
            b"/",
            b"exec",
            b"3",
            b"/x",
            b"",
            b"\n\t\xfe",
        ];
        let plan = parse(&encode(fields)).expect("valid plan");
        let app = &plan.apps[0];
        assert_eq!(app.root.as_os_str().as_encoded_bytes(), b"/r\xff\x01 oot");
        assert_eq!(app.exec[1], OsString::new());
        assert_eq!(app.exec[2].as_encoded_bytes(), b"\n\t\xfe");
    }

    #[test]
    fn empty_lists_and_zero_timeout() {
        let plan = parse_words(&format!("stop-timeout 0 {MINIMAL} groups 0 env 0")).expect("valid");
        assert_eq!(plan.stop_timeout, Duration::ZERO);
        assert!(plan.apps[0].groups.is_empty() && plan.apps[0].env.is_empty());
    }

    #[test]
    fn rejects_bad_framing() {
        assert!(matches!(parse(b""), Err(PlanError::Truncated { .. })));
        assert!(matches!(
            parse(PLAN_MAGIC.as_bytes()),
            Err(PlanError::Truncated { .. })
        ));
        let mut no_final_nul = encode_words(MINIMAL);
        no_final_nul.pop();
        assert!(matches!(
            parse(&no_final_nul),
            Err(PlanError::Truncated { .. })
        ));
        let other_magic = encode([&b"rkt-stage2-plan-v2"[..]]);
        assert!(matches!(
            parse(&other_magic),
            Err(PlanError::BadMagic { .. })
        ));
        assert_eq!(err(""), PlanError::NoApps);
        assert_eq!(err("stop-timeout 5"), PlanError::NoApps);
    }

    #[test]
    fn rejects_truncated_directives() {
        for text in [
            "app",
            "stop-timeout",
            "app a root",
            "app a exec 3 /bin/x y",
            "app a groups 2 1",
            // A huge count must neither allocate nor panic.
            "app a env 4294967295",
        ] {
            assert!(matches!(err(text), PlanError::Truncated { .. }), "{text:?}");
        }
    }

    #[test]
    fn rejects_unknown_and_misplaced_keys() {
        let bogus = err("bogus 1");
        assert!(matches!(bogus, PlanError::UnknownKey { ref key, field: 2 } if key == "bogus"));
        let in_app = err(&format!("{MINIMAL} user root"));
        assert!(matches!(in_app, PlanError::UnknownKey { .. }));
        let root_before_app = err(&format!("root /r {MINIMAL}"));
        assert!(matches!(root_before_app, PlanError::UnknownKey { .. }));
        let misplaced = err(&format!("{MINIMAL} stop-timeout 1"));
        assert!(matches!(misplaced, PlanError::PodKeyInApp { .. }));
    }

    #[test]
    fn rejects_bad_numbers_and_flags() {
        for bad in ["-1", "+1", "1x", "4294967296", "0x10", "１"] {
            let text = MINIMAL.replace("uid 0", &format!("uid {bad}"));
            assert!(matches!(err(&text), PlanError::BadNumber { .. }), "{bad:?}");
        }
        let empty_uid: [&[u8]; 14] = [
            PLAN_MAGIC.as_bytes(),
            b"app",
            b"a",
            b"root",
            b"/r",
            b"uid",
            b"",
            b"gid",
            b"0",
            b"cwd",
            b"/",
            b"exec",
            b"1",
            b"/x",
        ];
        assert!(matches!(
            parse(&encode(empty_uid)),
            Err(PlanError::BadNumber { .. })
        ));
        let bad_timeout = err(&format!("stop-timeout ten {MINIMAL}"));
        assert!(matches!(bad_timeout, PlanError::BadNumber { .. }));
        let bad_flag = err(&format!("interactive yes {MINIMAL}"));
        assert!(matches!(bad_flag, PlanError::BadFlag { .. }));
        assert!(matches!(err("app a exec x"), PlanError::BadNumber { .. }));
        assert!(matches!(
            err("app a groups 1 x"),
            PlanError::BadNumber { .. }
        ));
    }

    #[test]
    fn rejects_missing_required_keys() {
        for (present, missing) in [
            ("root /r", "root"),
            ("uid 0", "uid"),
            ("gid 0", "gid"),
            ("cwd /", "cwd"),
            ("exec 1 /bin/true", "exec"),
        ] {
            let text = MINIMAL.replace(present, "");
            let expected = PlanError::MissingKey {
                key: missing,
                app: "a".into(),
            };
            assert_eq!(err(&text), expected);
        }
        let no_args = MINIMAL.replace("exec 1 /bin/true", "exec 0");
        assert!(matches!(
            err(&no_args),
            PlanError::EmptyCommand { key: "exec", .. }
        ));
        let empty_hook = err(&format!("{MINIMAL} post-stop 0"));
        assert!(matches!(
            empty_hook,
            PlanError::EmptyCommand {
                key: "post-stop",
                ..
            }
        ));
    }

    #[test]
    fn rejects_duplicates() {
        let apps = format!("{MINIMAL} {} {MINIMAL}", MINIMAL.replace("app a", "app b"));
        assert_eq!(err(&apps), PlanError::DuplicateApp { name: "a".into() });
        let key = err(&format!("{MINIMAL} uid 1"));
        assert!(matches!(key, PlanError::DuplicateKey { app: Some(_), .. }));
        let pod_key = err(&format!("stop-timeout 1 stop-timeout 2 {MINIMAL}"));
        assert!(matches!(pod_key, PlanError::DuplicateKey { app: None, .. }));
    }

    #[test]
    fn rejects_bad_values() {
        for name in ["A", "a/b", "..", ".a", "a-", "-a", "a--b", "a_b"] {
            let text = MINIMAL.replace("app a", &format!("app {name}"));
            assert!(
                matches!(err(&text), PlanError::BadAppName { .. }),
                "{name:?}"
            );
        }
        for (good, bad) in [
            ("root /r", "root r"),
            ("cwd /", "cwd ."),
            ("1 /bin/true", "1 true"),
        ] {
            let text = MINIMAL.replace(good, bad);
            assert!(
                matches!(err(&text), PlanError::NotAbsolute { .. }),
                "{bad:?}"
            );
        }
        let hook = err(&format!("{MINIMAL} pre-start 1 hook"));
        assert!(matches!(
            hook,
            PlanError::NotAbsolute {
                key: "pre-start",
                ..
            }
        ));
        let rkt_dir = err(&format!("rkt-dir rkt {MINIMAL}"));
        assert!(matches!(rkt_dir, PlanError::NotAbsolute { app: None, .. }));
        for entry in ["NOEQUALS", "=v"] {
            let text = format!("{MINIMAL} env 1 {entry}");
            assert!(matches!(err(&text), PlanError::BadEnv { .. }), "{entry:?}");
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        assert_eq!(err("bogus").to_string(), "unknown key \"bogus\" at field 2");
        assert_eq!(err("app a").to_string(), "app \"a\": missing key \"root\"");
        assert_eq!(
            err("app a uid x").to_string(),
            "uid: \"x\" is not a decimal number in range"
        );
        assert_eq!(
            err("app").to_string(),
            "truncated input: expected an app name"
        );
    }
}
