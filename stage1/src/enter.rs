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
    if !aci::validate::is_ac_name(&args.app) {
        anyhow::bail!("invalid app name {:?}", args.app);
    }
    let env = read_env(&args.app)?;
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
    let cmd = &args.command[0];
    let program = if cmd.contains('/') {
        Some(cmd.clone())
    } else {
        // We are chrooted: the app root is "/".
        aci::rootfs::find_in_path(Path::new("/"), cmd, &path_var)
    };
    let program = program.with_context(|| {
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

/// The app's environment file. The pod can write its stage1 root, so the file is read
/// inside that root, bounded, and only if it is a regular file.
fn read_env(app: &str) -> Result<Vec<(String, String)>> {
    const MAX_ENV_FILE: u64 = 1 << 20;
    let rel = format!("{ENV_DIR}/{app}");
    let bytes = aci::rootfs::read_in_root(Path::new(STAGE1_ROOTFS), &rel, MAX_ENV_FILE)
        .with_context(|| format!("cannot read the environment of app {app} ({rel})"))?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}
