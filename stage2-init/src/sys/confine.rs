//! The parts of an app's confinement that stage1 prepared and stage2-init only applies in the
//! child before `execve` (docs/stage-contract.md, "Cgroups" and "Seccomp"): joining the app's
//! cgroups through descriptors stage1 left open, the OOM score, no-new-privileges and the
//! seccomp programs stage1 compiled. Child-side functions make raw syscalls only.
use std::io;
use std::path::Path;

use super::spawn::{check, Step};
use super::Error;

/// One classic BPF program, as `struct sock_filter` instructions.
pub type Program = Vec<libc::sock_filter>;

/// Reads the programs file stage1 wrote: for each program, a native-endian u32 instruction
/// count and then 8-byte `sock_filter`s. Anything malformed is refused: an app never starts
/// with less filtering than planned.
pub fn read_programs(path: &Path) -> Result<Vec<Program>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::new("read seccomp programs", e))?;
    parse_programs(&bytes).ok_or_else(|| {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a list of BPF programs", path.display()),
        );
        Error::new("read seccomp programs", e)
    })
}

/// The kernel's limit on one program (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;

pub fn parse_programs(mut bytes: &[u8]) -> Option<Vec<Program>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let count = u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        bytes = &bytes[4..];
        if count == 0 || count > MAX_INSTRUCTIONS || bytes.len() < count * 8 {
            return None;
        }
        let program = bytes[..count * 8]
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        out.push(program);
        bytes = &bytes[count * 8..];
    }
    (!out.is_empty()).then_some(out)
}

/// `struct clone_args` of clone3(2), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `fork`, into the cgroup2 directory `cgroup` when given: joining a cgroup at creation only
/// takes the kernel's cgroup lock for reading, where moving a process later waits for an RCU
/// grace period. Returns the pid (0 in the child) and whether the child was placed; a kernel
/// without CLONE_INTO_CGROUP (before 5.7), or a pod in a user namespace (which may not write
/// the host's cgroup files itself), gets a plain fork and the caller's move through the
/// `cgroup.procs` descriptor stage1 opened.
///
/// # Safety
/// As `fork`: the caller is single-threaded and the child only makes async-signal-safe calls.
pub unsafe fn fork_into(cgroup: Option<libc::c_int>) -> io::Result<(libc::pid_t, bool)> {
    if let Some(fd) = cgroup {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: fd as u64,
            ..CloneArgs::default()
        };
        // Without a stack, clone3 returns in both processes on the caller's stack, as fork.
        let pid = libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        );
        if pid >= 0 {
            return Ok((pid as libc::pid_t, true));
        }
        let err = io::Error::last_os_error();
        if !matches!(
            err.raw_os_error(),
            Some(
                libc::ENOSYS
                    | libc::E2BIG
                    | libc::EINVAL
                    | libc::EOPNOTSUPP
                    | libc::EACCES
                    | libc::EPERM
            )
        ) {
            return Err(err);
        }
    }
    match libc::fork() {
        -1 => Err(io::Error::last_os_error()),
        pid => Ok((pid, false)),
    }
}

/// Moves the calling (single-threaded) process into each v1 cgroup whose `tasks` `fds` are
/// open for.
pub(super) fn join_cgroups(fds: &[libc::c_int]) -> Result<(), Step> {
    for &fd in fds {
        // "0" names the writer itself, whatever PID namespace it is in.
        // SAFETY: writes one byte from a static buffer to a descriptor number.
        let rc = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        check(rc as libc::c_long, Step::JoinCgroup)?;
    }
    Ok(())
}

/// Writes the prepared decimal `value` to /proc/self/oom_score_adj.
pub(super) fn set_oom_score_adj(value: &[u8]) -> Result<(), Step> {
    // SAFETY: a NUL-terminated static path; plain flags.
    let fd = unsafe {
        libc::open(
            c"/proc/self/oom_score_adj".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    check(fd.into(), Step::OomScoreAdj)?;
    // SAFETY: `value` is a live slice; `fd` was just opened.
    let rc = unsafe { libc::write(fd, value.as_ptr().cast(), value.len()) };
    // SAFETY: closes the descriptor opened above.
    unsafe { libc::close(fd) };
    check(rc as libc::c_long, Step::OomScoreAdj)
}

pub(super) fn set_no_new_privs() -> Result<(), Step> {
    // SAFETY: plain integer arguments.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    check(rc.into(), Step::NoNewPrivs)
}

/// Loads `programs` in order; the last one loaded is consulted first by the kernel.
pub(super) fn load_seccomp(programs: &[Program]) -> Result<(), Step> {
    for p in programs {
        let prog = libc::sock_fprog {
            len: p.len() as libc::c_ushort,
            filter: p.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `p`, which outlives the call; the kernel copies it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0 as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        check(rc, Step::Seccomp)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_file_round_trips_and_rejects_garbage() {
        let mut bytes = 2u32.to_ne_bytes().to_vec();
        bytes.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0xff, 0x7f]);
        bytes.extend_from_slice(&[6, 0, 1, 2, 5, 0, 0, 0]);
        let progs = parse_programs(&bytes).unwrap();
        assert_eq!(progs.len(), 1);
        assert_eq!(progs[0][0].code, 6);
        assert_eq!(progs[0][0].k, 0x7fff_0000);
        assert_eq!((progs[0][1].jt, progs[0][1].jf), (1, 2));
        assert!(
            parse_programs(&bytes[..bytes.len() - 1]).is_none(),
            "truncated"
        );
        assert!(parse_programs(&[]).is_none(), "empty");
        assert!(
            parse_programs(&0u32.to_ne_bytes()).is_none(),
            "zero-length program"
        );
    }
}
