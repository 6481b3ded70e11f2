//! What an app's seccomp isolators ask for, on this architecture (x86_64): the syscall
//! numbers a filter allows or refuses, and how it refuses (docs/stage-contract.md,
//! "Seccomp"). stage0 uses it to refuse unknown names before a pod exists; stage1 compiles
//! the result into a BPF program.
//!
//! rkt's rules: no seccomp isolator means rkt's default allow list; `@appc.io/all` in a
//! retain set means no filter; `@appc.io/empty` in a remove set means the default allow list;
//! `@rkt/default-{whitelist,blacklist}` and `@docker/default-{whitelist,blacklist}` expand to
//! the default lists. Where this differs from rkt, it is stricter: `clone` may not create a
//! user namespace under the default list and `clone3` answers ENOSYS there (so libc falls
//! back to `clone`), and a group or syscall name this stage1 does not know is an error
//! instead of being skipped.
pub mod tables;

use crate::isolator::{self, Known};
use crate::schema::Isolator;
use crate::ValidationError;

/// Allow-listed syscalls not in rkt's 2016 list that current C libraries and runtimes call
/// on every start (statx, rseq, close_range, ...). Without them the default filter would
/// break ordinary programs.
const MODERN_DEFAULTS: &[&str] = &[
    "statx",
    "rseq",
    "close_range",
    "openat2",
    "faccessat2",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "preadv2",
    "pwritev2",
    "membarrier",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "io_pgetevents",
    "epoll_pwait2",
    "futex_waitv",
    "process_mrelease",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "getcpu",
    "clock_nanosleep",
];

/// rkt's (and Docker's, as of 2016) default allow list. Names of other architectures
/// (`chown32`, ...) are part of the published list and are skipped here.
const DEFAULT_ALLOW: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "memfd_create",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "pause",
    "personality",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "prlimit64",
    "pselect6",
    "pwrite64",
    "pwritev",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigreturn",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "syslog",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    "arch_prctl",
    "modify_ldt",
    "chroot",
    "clone",
];

/// rkt's (and Docker's) default deny list: kernel keyrings, modules, BPF, perf, namespaces,
/// mounts, reboot, clock setting, ptrace and other host-wide operations.
const DEFAULT_DENY: &[&str] = &[
    "acct",
    "add_key",
    "adjtimex",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "clone",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "perf_event_open",
    "personality",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapon",
    "swapoff",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "breakpoint",
    "cacheflush",
    "set_tls",
    "sync_file_range2",
];

/// What an allow-list filter always lets through, as systemd did for rkt: without them no
/// program could start or end. `capget` and `capset` are the last calls stage2-init makes before `execve`
/// for an app that keeps root without no-new-privileges.
pub const ALWAYS_ALLOWED: &[&str] = &[
    "execve",
    "exit",
    "exit_group",
    "rt_sigreturn",
    "capget",
    "capset",
];

/// Whether listed syscalls are the only ones allowed or the ones refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Allow,
    Deny,
}

/// How a refused syscall ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It fails with this errno.
    Errno(i32),
    /// The process is killed with SIGSYS (rkt's behaviour without an `errno`).
    Kill,
}

/// The filter one app gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Sorted, without duplicates.
    pub syscalls: Vec<u32>,
    pub refusal: Refusal,
    /// `clone` may not create user namespaces and `clone3` answers ENOSYS (it cannot be
    /// inspected), as in Docker's default profile.
    pub block_user_namespaces: bool,
}

/// The x86_64 number of a syscall name.
pub fn syscall_number(name: &str) -> Option<u32> {
    tables::SYSCALLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
}

/// The number of an errno name such as `EPERM`.
pub fn errno_number(name: &str) -> Option<i32> {
    tables::ERRNOS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
}

fn numbers_of(names: &[&str], out: &mut Vec<u32>) {
    out.extend(names.iter().filter_map(|n| syscall_number(n)));
}

/// rkt's default filter: the default allow list, EPERM for the rest.
pub fn default_policy() -> Policy {
    let mut syscalls = Vec::new();
    numbers_of(DEFAULT_ALLOW, &mut syscalls);
    numbers_of(MODERN_DEFAULTS, &mut syscalls);
    finish(Policy {
        mode: Mode::Allow,
        syscalls,
        refusal: Refusal::Errno(libc_eperm()),
        block_user_namespaces: true,
    })
}

fn libc_eperm() -> i32 {
    errno_number("EPERM").unwrap_or(1)
}

fn finish(mut policy: Policy) -> Policy {
    if policy.mode == Mode::Allow {
        numbers_of(ALWAYS_ALLOWED, &mut policy.syscalls);
    }
    policy.syscalls.sort_unstable();
    policy.syscalls.dedup();
    policy
}

/// What a seccomp set expands to.
enum Expanded {
    /// `@appc.io/all`: everything.
    All,
    /// `@appc.io/empty`: nothing.
    Empty,
    Syscalls {
        numbers: Vec<u32>,
        defaults: bool,
    },
}

fn expand(isolator: &str, set: &[String]) -> Result<Expanded, ValidationError> {
    let mut numbers = Vec::new();
    let mut defaults = false;
    for item in set {
        match item.as_str() {
            "@appc.io/all" => return Ok(Expanded::All),
            "@appc.io/empty" => return Ok(Expanded::Empty),
            "@rkt/default-whitelist" | "@docker/default-whitelist" => {
                numbers_of(DEFAULT_ALLOW, &mut numbers);
                numbers_of(MODERN_DEFAULTS, &mut numbers);
                defaults = true;
            }
            "@rkt/default-blacklist" | "@docker/default-blacklist" => {
                // `clone` is on the list for its namespace flags: refusing it outright would
                // refuse fork and threads. It is refused only for new user namespaces.
                let deny: Vec<&str> = DEFAULT_DENY.iter().copied().filter(|n| *n != "clone").collect();
                numbers_of(&deny, &mut numbers);
                defaults = true;
            }
            group if group.starts_with('@') => {
                return Err(ValidationError::invalid(
                    format!("isolator {isolator} set"),
                    group,
                    "unknown seccomp group: use @appc.io/all, @appc.io/empty, @rkt/default-whitelist, @rkt/default-blacklist, @docker/default-whitelist or @docker/default-blacklist (systemd's groups need a systemd stage1)",
                ))
            }
            name => match syscall_number(name) {
                Some(nr) => numbers.push(nr),
                None => {
                    return Err(ValidationError::invalid(
                        format!("isolator {isolator} set"),
                        name,
                        "unknown system call on x86_64 (see syscalls(2))",
                    ))
                }
            },
        }
    }
    Ok(Expanded::Syscalls { numbers, defaults })
}

fn refusal(isolator: &str, errno: Option<&str>) -> Result<Refusal, ValidationError> {
    match errno {
        None => Ok(Refusal::Kill),
        Some(name) => errno_number(name).map(Refusal::Errno).ok_or_else(|| {
            ValidationError::invalid(
                format!("isolator {isolator} errno"),
                name,
                "unknown errno name (see errno(3))",
            )
        }),
    }
}

/// The filter for an app's isolators: `Ok(None)` when it runs unfiltered (`@appc.io/all`
/// retained). Errors name the isolator and the unknown syscall, group or errno.
pub fn policy(isolators: &[Isolator]) -> Result<Option<Policy>, ValidationError> {
    let mut chosen = None;
    for iso in isolators {
        match isolator::parse(iso)? {
            Some(Known::SeccompRetain(s)) => chosen = Some((Mode::Allow, iso.name.clone(), s)),
            Some(Known::SeccompRemove(s)) => chosen = Some((Mode::Deny, iso.name.clone(), s)),
            _ => {}
        }
    }
    let Some((mode, name, seccomp)) = chosen else {
        return Ok(Some(default_policy()));
    };
    let refusal = refusal(&name, seccomp.errno.as_deref())?;
    match (mode, expand(&name, &seccomp.set)?) {
        (Mode::Allow, Expanded::All) => Ok(None),
        (Mode::Deny, Expanded::Empty) => Ok(Some(default_policy())),
        // Retaining nothing but what every program needs, or refusing everything: rkt
        // passed these through to systemd; both leave no usable app, so say so.
        (Mode::Allow, Expanded::Empty) | (Mode::Deny, Expanded::All) => {
            Err(ValidationError::invalid(
                format!("isolator {name} set"),
                seccomp.set.join(","),
                "this filter would refuse every system call; use mode=retain,@appc.io/all for no filter",
            ))
        }
        (mode, Expanded::Syscalls { numbers, defaults }) => Ok(Some(finish(Policy {
            mode,
            syscalls: numbers,
            refusal,
            block_user_namespaces: defaults,
        }))),
    }
}

#[cfg(test)]
mod tests;
