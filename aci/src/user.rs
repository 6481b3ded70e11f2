//! Resolving an app's `user` and `group` inside its root filesystem, in rkt's order:
//! a number; `root` (always 0, even without `/etc/passwd`); a `/path`, meaning the owner (or
//! group) of that file inside the root; otherwise a name looked up in the root's `/etc/passwd`
//! (or `/etc/group`). Files are read through [`crate::rootfs`], so symlinks stay in the root.
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::rootfs;
use crate::UserError;

/// Larger account files are not read further (a hostile image cannot make us buffer more).
const MAX_ACCOUNT_FILE: u64 = 16 << 20;

#[derive(Clone, Copy)]
enum Kind {
    User,
    Group,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::User => "/etc/passwd",
            Kind::Group => "/etc/group",
        }
    }

    fn not_found(self, name: &str) -> UserError {
        let name = name.to_string();
        match self {
            Kind::User => UserError::UserNotFound { name },
            Kind::Group => UserError::GroupNotFound { name },
        }
    }
}

/// The numeric id in field 3 of the first `name:…` line; comments, blank and malformed lines
/// are skipped.
fn lookup(reader: impl Read, name: &str) -> io::Result<Option<u32>> {
    let mut reader = BufReader::new(reader.take(MAX_ACCOUNT_FILE));
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            continue;
        };
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim_start().starts_with('#') {
            continue;
        }
        let mut fields = text.split(':');
        if fields.next() != Some(name) {
            continue;
        }
        if let Some(id) = fields.nth(1).and_then(|f| f.trim().parse::<u32>().ok()) {
            return Ok(Some(id));
        }
    }
}

fn resolve(root: &Path, spec: &str, kind: Kind) -> Result<u32, UserError> {
    if let Ok(id) = spec.parse::<u32>() {
        return Ok(id);
    }
    if spec == "root" {
        return Ok(0);
    }
    let root_str = || root.display().to_string();
    if spec.starts_with('/') {
        let st = rootfs::lstat_in_root(root, spec).map_err(|source| UserError::Stat {
            root: root_str(),
            path: spec.to_string(),
            source,
        })?;
        return Ok(match kind {
            Kind::User => st.st_uid,
            Kind::Group => st.st_gid,
        });
    }
    if spec.is_empty() {
        return Err(kind.not_found(spec));
    }
    let read_err = |source| UserError::Read {
        root: root_str(),
        path: kind.file().to_string(),
        source,
    };
    let file = match rootfs::open_in_root(root, kind.file()) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(kind.not_found(spec)),
        Err(e) => return Err(read_err(e)),
    };
    lookup(file, spec)
        .map_err(read_err)?
        .ok_or_else(|| kind.not_found(spec))
}

/// The uid for an app's `user` (see the module documentation for the order of rules).
pub fn resolve_uid(root: &Path, user: &str) -> Result<u32, UserError> {
    resolve(root, user, Kind::User)
}

/// The gid for an app's `group` (see the module documentation for the order of rules).
pub fn resolve_gid(root: &Path, group: &str) -> Result<u32, UserError> {
    resolve(root, group, Kind::Group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const PASSWD: &str = "# comment line\n\nroot:x:0:0:root:/root:/bin/sh\n\
        broken line without colons\nweird:x:notanumber:1::/:/bin/sh\n\
        daemon:x:2:2:daemon:/sbin:/bin/false\r\n  # indented comment\nuser:x:1000:1000::/home/user:/bin/sh\n\
        user:x:2000:2000::/home/dup:/bin/sh\n";
    const GROUP: &str = "#c\nroot:x:0:\nwheel:x:10:root,user\n\nstaff::50\n";

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(t.path().join("etc/group"), GROUP).unwrap();
        std::fs::write(t.path().join("owned"), "").unwrap();
        t
    }

    #[test]
    fn numeric_and_root() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(resolve_uid(t.path(), "1234").unwrap(), 1234);
        assert_eq!(resolve_gid(t.path(), "0").unwrap(), 0);
        assert_eq!(
            resolve_uid(t.path(), "root").unwrap(),
            0,
            "no passwd needed"
        );
        assert_eq!(resolve_gid(t.path(), "root").unwrap(), 0);
    }

    #[test]
    fn names_from_passwd_and_group() {
        let t = tree();
        assert_eq!(resolve_uid(t.path(), "daemon").unwrap(), 2);
        assert_eq!(
            resolve_uid(t.path(), "user").unwrap(),
            1000,
            "first entry wins"
        );
        assert_eq!(resolve_gid(t.path(), "wheel").unwrap(), 10);
        assert_eq!(resolve_gid(t.path(), "staff").unwrap(), 50);
        let e = resolve_uid(t.path(), "nobody").unwrap_err();
        assert!(matches!(e, UserError::UserNotFound { ref name } if name == "nobody"));
        assert!(
            e.to_string().starts_with("\"nobody\" user not found"),
            "{e}"
        );
        let e = resolve_gid(t.path(), "nogroup").unwrap_err();
        assert!(
            e.to_string().starts_with("\"nogroup\" group not found"),
            "{e}"
        );
        assert!(matches!(
            resolve_uid(t.path(), "weird").unwrap_err(),
            UserError::UserNotFound { .. }
        ));
        assert!(matches!(
            resolve_gid(t.path(), "users").unwrap_err(),
            UserError::GroupNotFound { .. }
        ));
        assert!(matches!(
            resolve_uid(t.path(), "").unwrap_err(),
            UserError::UserNotFound { .. }
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            resolve_uid(empty.path(), "user").unwrap_err(),
            UserError::UserNotFound { .. }
        ));
    }

    #[test]
    fn path_owner() {
        let t = tree();
        let me = rustix::process::geteuid().as_raw();
        let my_gid = rustix::process::getegid().as_raw();
        assert_eq!(resolve_uid(t.path(), "/owned").unwrap(), me);
        assert_eq!(resolve_gid(t.path(), "/owned").unwrap(), my_gid);
        let e = resolve_uid(t.path(), "/missing").unwrap_err();
        assert!(matches!(e, UserError::Stat { ref path, .. } if path == "/missing"));
    }

    #[test]
    fn fifo_account_files_are_errors_not_hangs() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            t.path().join("etc/passwd"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        symlink("passwd", t.path().join("etc/group")).unwrap();
        let root = t.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let results = (resolve_uid(&root, "app"), resolve_gid(&root, "app"));
            tx.send(results).unwrap();
        });
        let (uid, gid) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("user resolution blocked on a fifo");
        for (e, file) in [
            (uid.unwrap_err(), "/etc/passwd"),
            (gid.unwrap_err(), "/etc/group"),
        ] {
            assert!(
                matches!(e, UserError::Read { ref path, .. } if path == file),
                "{e}"
            );
            let source = std::error::Error::source(&e).unwrap().to_string();
            assert!(source.contains("not a regular file"), "{source}");
        }
    }

    #[test]
    fn passwd_symlink_stays_inside_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::create_dir_all(t.path().join("real")).unwrap();
        std::fs::write(t.path().join("real/passwd"), "app:x:42:42::/:/bin/sh\n").unwrap();
        // An absolute link is resolved inside the root, never on the host.
        symlink("/real/passwd", t.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve_uid(t.path(), "app").unwrap(), 42);
    }
}
