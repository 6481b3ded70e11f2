//! The `enter` entrypoint: join the pod's namespaces and an app's root, run a command there and
//! pass its exit status through (REFERENCE §2.2).
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::{Context, Result};

use crate::args::EnterArgs;
use crate::contract::{ENV_DIR, STAGE1_ROOTFS, STAGE2_DIR};
use crate::sys::{self, PreparedExec};

pub fn enter(args: &EnterArgs) -> Result<i32> {
    let env_path = Path::new(STAGE1_ROOTFS).join(ENV_DIR).join(&args.app);
    let env = read_env(&env_path)?;
    let app_root = Path::new(STAGE1_ROOTFS)
        .join(STAGE2_DIR)
        .join(&args.app)
        .join("rootfs");
    if !app_root.is_dir() {
        anyhow::bail!("pod has no app {:?}", args.app);
    }
    // Open every namespace before joining any: /proc paths change meaning after setns(mnt).
    let kinds = [
        ("ipc", libc::CLONE_NEWIPC),
        ("uts", libc::CLONE_NEWUTS),
        ("net", libc::CLONE_NEWNET),
        ("pid", libc::CLONE_NEWPID),
        ("mnt", libc::CLONE_NEWNS),
    ];
    let mut handles: Vec<(OwnedFd, libc::c_int, &str)> = Vec::new();
    for (name, kind) in kinds {
        let path = format!("/proc/{}/ns/{name}", args.pid);
        let f = File::open(&path)
            .with_context(|| format!("cannot open {path}: is the pod running?"))?;
        handles.push((OwnedFd::from(f), kind, name));
    }
    for (fd, kind, name) in &handles {
        sys::setns(fd, *kind, name)?;
    }
    // After joining the mount namespace our root is the stage1 root.
    let inner_root = Path::new("/")
        .join(STAGE2_DIR)
        .join(&args.app)
        .join("rootfs");
    sys::chroot(&inner_root)?;
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| crate::contract::DEFAULT_PATH.into());
    let program = resolve_command(&args.command[0], &path_var).with_context(|| {
        format!(
            "command {:?} not found in app {}",
            args.command[0], args.app
        )
    })?;
    let exec = PreparedExec::new(&program, &args.command, &env)?;
    sys::block_signals()?;
    let pid = sys::spawn_exec(&exec)?;
    loop {
        let sig = sys::wait_signal();
        if sig == libc::SIGCHLD {
            match sys::try_wait(pid)? {
                Some(sys::Exit::Code(c)) => return Ok(c),
                Some(sys::Exit::Signal(s)) => return Ok(128 + s),
                None => continue,
            }
        }
        let _ = sys::kill(pid, sig);
    }
}

fn read_env(path: &Path) -> Result<Vec<(String, String)>> {
    let content =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(content
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// Like execvp: names with a slash are used as they are, others are searched in PATH.
fn resolve_command(cmd: &str, path_var: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if cmd.contains('/') {
        return Some(cmd.to_string());
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .find_map(|dir| {
            let candidate = format!("{}/{cmd}", dir.trim_end_matches('/'));
            let meta = std::fs::metadata(&candidate).ok()?;
            (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
        })
}
