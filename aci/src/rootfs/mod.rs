//! Paths inside an app root, resolved as if the root were `/` (chroot semantics): absolute
//! symlinks start again at the root and `..` never climbs above it; and removing trees of any
//! depth ([`remove_tree`]).
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};

mod remove;

#[cfg(feature = "archive")]
pub(crate) use remove::remove_at;
pub use remove::remove_tree;

/// Symlinks followed before giving up with `ELOOP`, as the kernel does.
const MAX_SYMLINKS: usize = 40;

pub(crate) fn open_root(root: &Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn open_in(root: &Path, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let dir = open_root(root)?;
    let path = if path.is_empty() { "." } else { path };
    Ok(rfs::openat2(
        &dir,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

fn ensure_regular(path: &str, fd: &OwnedFd) -> io::Result<()> {
    let kind = FileType::from_raw_mode(rfs::fstat(fd)?.st_mode);
    if kind == FileType::RegularFile {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{path} is not a regular file (it is a {})", type_name(kind)),
    ))
}

/// Opens the regular file `path` read-only inside `root`, following symlinks as a chroot
/// would. Anything else (a fifo, device, socket or directory, also behind a symlink) is an
/// `InvalidInput` error saying "not a regular file", and the call never blocks: an image (or a
/// running pod) controls what is at `path`, and opening a fifo would wait for a writer forever.
pub fn open_in_root(root: &Path, path: &str) -> io::Result<File> {
    // Look before opening for reading, so that a device is never opened at all.
    ensure_regular(path, &open_in(root, path, OFlags::PATH)?)?;
    // The path may have been replaced since: O_NONBLOCK keeps a fifo from blocking the open,
    // O_NOCTTY keeps a terminal from becoming ours, and the fd we return is checked again.
    let fd = open_in(
        root,
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
    )?;
    ensure_regular(path, &fd)?;
    let flags = rfs::fcntl_getfl(&fd)?;
    rfs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK)?;
    Ok(File::from(fd))
}

/// Reads the regular file `path` inside `root` (see [`open_in_root`]), for small files that an
/// untrusted image or pod wrote. A file larger than `max_bytes` is an `InvalidData` error,
/// and no more than `max_bytes + 1` bytes are ever read.
pub fn read_in_root(root: &Path, path: &str, max_bytes: u64) -> io::Result<Vec<u8>> {
    let file = open_in_root(root, path)?;
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path} is larger than {max_bytes} bytes"),
        )
    };
    let size = file.metadata()?.len();
    if size > max_bytes {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(size as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut out)?;
    if out.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(out)
}

/// `lstat`-like metadata of `path` inside `root`: intermediate symlinks are followed inside the
/// root, a final symlink is not.
pub(crate) fn lstat_in_root(root: &Path, path: &str) -> io::Result<rfs::Stat> {
    let fd = open_in(root, path, OFlags::PATH | OFlags::NOFOLLOW)?;
    Ok(rfs::fstat(&fd)?)
}

fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// A resolved component and, for directories, an fd to continue the walk from.
struct Step {
    name: OsString,
    dir: Option<OwnedFd>,
}

/// The host path of `path` resolved inside `root`. Every symlink is evaluated inside the root
/// (absolute targets restart at the root, `..` stops at it). When a component does not exist,
/// the rest of the path is appended lexically, so a missing target can still be created.
/// Errors: `ELOOP` after 40 symlinks, `ENOTDIR` when a non-directory has components after it.
pub fn resolve_in_root(root: &Path, path: &str) -> io::Result<PathBuf> {
    let root_fd = open_root(root)?;
    let mut pending: VecDeque<Vec<u8>> = components(path.as_bytes()).map(<[u8]>::to_vec).collect();
    let mut stack: Vec<Step> = Vec::new();
    let mut missing: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(comp) = pending.pop_front() {
        if comp == b".." {
            if missing.pop().is_none() {
                stack.pop();
            }
            continue;
        }
        if !missing.is_empty() {
            missing.push(OsString::from_vec(comp));
            continue;
        }
        let cur: BorrowedFd<'_> = match stack.last() {
            Some(Step { dir: Some(fd), .. }) => fd.as_fd(),
            Some(Step { dir: None, .. }) => {
                return Err(io::Error::from_raw_os_error(libc_enotdir()))
            }
            None => root_fd.as_fd(),
        };
        let name = OsStr::from_bytes(&comp);
        let stat = match rfs::statat(cur, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => {
                missing.push(name.to_os_string());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(rustix::io::Errno::LOOP.into());
                }
                let target = rfs::readlinkat(cur, name, Vec::new())?.into_bytes();
                if target.first() == Some(&b'/') {
                    stack.clear();
                }
                for c in components(&target).rev() {
                    pending.push_front(c.to_vec());
                }
            }
            FileType::Directory => {
                let fd = rfs::openat(
                    cur,
                    name,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                stack.push(Step {
                    name: name.to_os_string(),
                    dir: Some(fd),
                });
            }
            _ => stack.push(Step {
                name: name.to_os_string(),
                dir: None,
            }),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(stack.iter().map(|s| s.name.as_os_str()));
    out.extend(missing.iter());
    Ok(out)
}

fn libc_enotdir() -> i32 {
    rustix::io::Errno::NOTDIR.raw_os_error()
}

/// The `PATH` the appc spec gives apps whose environment sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether `path` inside `root` is an executable regular file; `Err` when it does not exist.
fn check_executable(root: &Path, path: &str) -> io::Result<bool> {
    let fd = open_in(root, path, OFlags::PATH)?;
    let st = rfs::fstat(&fd)?;
    Ok(FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_mode & 0o111 != 0)
}

fn is_executable(root: &Path, path: &str) -> bool {
    check_executable(root, path).unwrap_or(false)
}

/// Lexically cleans an absolute path like Go's `filepath.Clean` (`..` stops at `/`).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Resolves an app's `exec[0]` the way rkt does: an absolute path is used as it is, a path
/// with a slash is relative to `working_directory` (`""` means `/`), a bare name is searched
/// in `path_var`. Returns the absolute in-root path of an executable regular file; the error
/// says which of "not found", "does not exist" or "not executable" applies.
pub fn resolve_exec(
    root: &Path,
    exec0: &str,
    working_directory: &str,
    path_var: &str,
) -> io::Result<String> {
    if exec0.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    }
    let Some(candidate) = exec_path(exec0, working_directory) else {
        return find_in_path(root, exec0, path_var).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{exec0:?} not found in the image (searched PATH {path_var})"),
            )
        });
    };
    match check_executable(root, &candidate) {
        Ok(true) => Ok(candidate),
        Ok(false) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{candidate} in the image is not an executable regular file"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{candidate} does not exist in the image"),
        )),
        Err(e) => Err(e),
    }
}

/// The in-root path of a command given as a path (absolute, or relative to
/// `working_directory` when it has a slash); `None` for a bare name, which is looked up in
/// `PATH`.
fn exec_path(exec0: &str, working_directory: &str) -> Option<String> {
    if exec0.starts_with('/') {
        Some(clean(exec0))
    } else if exec0.contains('/') {
        Some(clean(&format!("/{working_directory}/{exec0}")))
    } else {
        None
    }
}

/// [`resolve_exec`] for an app whose volumes are mounted at `volumes` (paths inside the app,
/// as [`crate::schema::mount_target`] gives them). A command given as a path that one of
/// them covers is taken as it is: the volume provides it when the app starts, and stage2-init
/// reports it if it is missing then. A bare name is looked up in the image only, as rkt did.
pub fn resolve_app_exec(
    root: &Path,
    exec0: &str,
    working_directory: &str,
    path_var: &str,
    volumes: &[String],
) -> io::Result<String> {
    match exec_path(exec0, working_directory) {
        Some(path) if volumes.iter().any(|v| crate::schema::covers(v, &path)) => Ok(path),
        _ => resolve_exec(root, exec0, working_directory, path_var),
    }
}

/// Looks `name` up like `execvp` would inside `root` and returns the absolute in-root path of
/// an executable regular file. A name with a slash is checked as given (relative to `/`);
/// otherwise each directory of `path_var` is tried in order (empty entries mean `/`).
pub fn find_in_path(root: &Path, name: &str, path_var: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let absolute = |p: &str| {
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("/{p}")
        }
    };
    if name.contains('/') {
        let candidate = absolute(name);
        return is_executable(root, &candidate).then_some(candidate);
    }
    path_var.split(':').find_map(|dir| {
        let dir = absolute(dir);
        let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
        is_executable(root, &candidate).then_some(candidate)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("dir2")).unwrap();
        std::fs::create_dir_all(r.join("dir1")).unwrap();
        std::fs::write(r.join("etc/hosts"), "inside").unwrap();
        std::fs::write(r.join("usr/bin/tool"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(
            r.join("usr/bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(r.join("usr/bin/data"), "x").unwrap();
        symlink("usr/bin", r.join("bin")).unwrap();
        symlink("/etc", r.join("usr/etc-abs")).unwrap();
        symlink("../../../../etc/hosts", r.join("usr/bin/climb")).unwrap();
        symlink("/dir2", r.join("dir1/link_to_dir2")).unwrap();
        symlink("loop-b", r.join("loop-a")).unwrap();
        symlink("loop-a", r.join("loop-b")).unwrap();
        t
    }

    #[test]
    fn resolution_stays_in_root() {
        let t = tree();
        let r = t.path();
        let res = |p: &str| resolve_in_root(r, p).unwrap();
        assert_eq!(res("/etc/hosts"), r.join("etc/hosts"));
        assert_eq!(res("/bin/tool"), r.join("usr/bin/tool"));
        assert_eq!(res("/usr/etc-abs/hosts"), r.join("etc/hosts"));
        assert_eq!(res("/usr/bin/climb"), r.join("etc/hosts"));
        assert_eq!(res("/../../etc/hosts"), r.join("etc/hosts"));
        assert_eq!(res("/dir1/link_to_dir2"), r.join("dir2"));
        assert_eq!(res("/dir1/link_to_dir2/new/file"), r.join("dir2/new/file"));
        assert_eq!(res("/missing/../etc"), r.join("etc"));
        assert_eq!(res("/"), r.to_path_buf());
        assert_eq!(res(""), r.to_path_buf());
        assert_eq!(res("relative/x"), r.join("relative/x"));
        let e = resolve_in_root(r, "/loop-a").unwrap_err();
        assert_eq!(
            e.raw_os_error(),
            Some(rustix::io::Errno::LOOP.raw_os_error())
        );
        let e = resolve_in_root(r, "/etc/hosts/x").unwrap_err();
        assert_eq!(
            e.raw_os_error(),
            Some(rustix::io::Errno::NOTDIR.raw_os_error())
        );
    }

    #[test]
    fn open_follows_links_inside_root() {
        let t = tree();
        let mut s = String::new();
        open_in_root(t.path(), "/usr/bin/climb")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "inside");
        let e = open_in_root(t.path(), "/loop-a").unwrap_err();
        assert_eq!(
            e.raw_os_error(),
            Some(rustix::io::Errno::LOOP.raw_os_error())
        );
        assert!(open_in_root(t.path(), "/nope").is_err());
    }

    fn mkfifo(path: &Path) {
        rfs::mknodat(
            rfs::CWD,
            path,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
    }

    /// Runs `f` on another thread and fails the test if it has not returned within 10 s (a
    /// blocked open would otherwise hang the test run).
    fn with_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("blocked on a non-regular file")
    }

    fn special_tree() -> tempfile::TempDir {
        let t = tree();
        let r = t.path();
        mkfifo(&r.join("etc/pipe"));
        symlink("/etc/pipe", r.join("etc/passwd")).unwrap();
        symlink("pipe", r.join("etc/group")).unwrap();
        t
    }

    #[test]
    fn open_refuses_fifos_without_blocking() {
        let t = special_tree();
        let root = t.path().to_path_buf();
        let results = with_deadline(move || {
            ["/etc/pipe", "/etc/passwd", "/etc/group", "/etc", "/"]
                .map(|p| (p, open_in_root(&root, p).map(|_| ())))
        });
        for (path, result) in results {
            let e = result.expect_err(path);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{path}: {e}");
            assert!(e.to_string().contains("not a regular file"), "{path}: {e}");
            assert!(e.to_string().starts_with(path), "{path}: {e}");
        }
        let root = t.path().to_path_buf();
        let e = with_deadline(move || read_in_root(&root, "/etc/passwd", 100)).unwrap_err();
        assert!(e.to_string().contains("(it is a fifo)"), "{e}");
    }

    #[test]
    fn opened_files_block_as_usual() {
        let t = tree();
        let f = open_in_root(t.path(), "/etc/hosts").unwrap();
        let flags = rfs::fcntl_getfl(&f).unwrap();
        assert!(!flags.contains(OFlags::NONBLOCK), "{flags:?}");
    }

    #[test]
    fn read_in_root_is_bounded() {
        let t = tree();
        let r = t.path();
        assert_eq!(read_in_root(r, "/usr/bin/climb", 6).unwrap(), b"inside");
        assert_eq!(read_in_root(r, "/etc/hosts", 100).unwrap(), b"inside");
        let e = read_in_root(r, "/etc/hosts", 5).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "/etc/hosts is larger than 5 bytes");
        std::fs::write(r.join("empty"), "").unwrap();
        assert_eq!(read_in_root(r, "/empty", 0).unwrap(), b"");
        let e = read_in_root(r, "/nope", 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn path_lookup() {
        let t = tree();
        let r = t.path();
        assert_eq!(
            find_in_path(r, "tool", "/sbin:/bin:/usr/bin").as_deref(),
            Some("/bin/tool")
        );
        assert_eq!(
            find_in_path(r, "tool", "/usr/bin").as_deref(),
            Some("/usr/bin/tool")
        );
        assert_eq!(find_in_path(r, "data", "/usr/bin"), None, "not executable");
        assert_eq!(
            find_in_path(r, "etc", ":/"),
            None,
            "directories are not executables"
        );
        assert_eq!(find_in_path(r, "missing", "/usr/bin"), None);
        assert_eq!(
            find_in_path(r, "/bin/tool", "").as_deref(),
            Some("/bin/tool")
        );
        assert_eq!(
            find_in_path(r, "usr/bin/tool", "").as_deref(),
            Some("/usr/bin/tool")
        );
        assert_eq!(find_in_path(r, "", "/usr/bin"), None);
    }

    #[test]
    fn exec_resolution() {
        let t = tree();
        let r = t.path();
        assert_eq!(resolve_exec(r, "/bin/tool", "", "").unwrap(), "/bin/tool");
        assert_eq!(
            resolve_exec(r, "bin/tool", "/usr", "").unwrap(),
            "/usr/bin/tool"
        );
        assert_eq!(
            resolve_exec(r, "./tool", "/usr/bin/", "").unwrap(),
            "/usr/bin/tool"
        );
        assert_eq!(
            resolve_exec(r, "usr/bin/tool", "", "").unwrap(),
            "/usr/bin/tool"
        );
        assert_eq!(
            resolve_exec(r, "tool", "/", DEFAULT_PATH).unwrap(),
            "/usr/bin/tool"
        );
        let e = resolve_exec(r, "nope", "/", "/bin").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(
            e.to_string().contains("\"nope\"") && e.to_string().contains("/bin"),
            "{e}"
        );
        let e = resolve_exec(r, "/usr/bin/data", "/", "").unwrap_err();
        assert!(e.to_string().contains("not an executable"), "{e}");
        let e = resolve_exec(r, "/missing", "/", "").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(resolve_exec(r, "", "/", "").is_err());
    }

    #[test]
    fn commands_in_volumes_are_not_looked_for_in_the_image() {
        let t = tree();
        let r = t.path();
        let vols = ["/opt/tools".to_string(), "/srv/run".to_string()];
        let exec = |e: &str, wd: &str| resolve_app_exec(r, e, wd, DEFAULT_PATH, &vols);
        assert_eq!(exec("/opt/tools/bin/x", "/").unwrap(), "/opt/tools/bin/x");
        assert_eq!(exec("tools/x", "/opt").unwrap(), "/opt/tools/x");
        assert_eq!(
            exec("/srv/run", "/").unwrap(),
            "/srv/run",
            "the mount point itself"
        );
        let e = exec("/opt/toolsx", "/").unwrap_err();
        assert!(e.to_string().contains("does not exist in the image"), "{e}");
        assert!(
            exec("x", "/opt/tools").is_err(),
            "bare names: the image's PATH"
        );
        assert_eq!(exec("/bin/tool", "/").unwrap(), "/bin/tool");
    }
}
