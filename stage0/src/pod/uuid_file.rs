//! `--uuid-file-save`: where `rkt run` writes the new pod's UUID.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

/// The `--uuid-file-save` file. Schedulers (Nomad) create it and keep reading it through an
/// fd, so an existing file is written in place, keeping its inode. The path is the caller's
/// but may be in a directory others can write: never follow a symlink planted there, and
/// never write into a fifo or device.
pub enum UuidFile {
    Existing { path: PathBuf, file: std::fs::File },
    Missing(PathBuf),
}

impl UuidFile {
    pub fn open(path: &Path) -> Result<UuidFile> {
        match open_regular(path, false) {
            Ok(file) => Ok(UuidFile::Existing {
                path: path.to_path_buf(),
                file,
            }),
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
            {
                Ok(UuidFile::Missing(path.to_path_buf()))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the UUID without a newline, as rkt does.
    pub fn write(self, uuid: &str) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let (path, file) = match self {
            UuidFile::Existing { path, file } => (path, file),
            // O_EXCL: whatever appeared at the path since `open` is refused, not followed.
            UuidFile::Missing(path) => {
                let file = open_regular(&path, true)?;
                (path, file)
            }
        };
        // Content first, then the length: a reader never sees an empty file, and a UUID
        // replacing a UUID is never mixed with the old one.
        file.write_all_at(uuid.as_bytes(), 0)
            .and_then(|()| file.set_len(uuid.len() as u64))
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Opens `path` for writing without following a final symlink and without blocking on a fifo,
/// and checks that it is a regular file.
fn open_regular(path: &Path, create: bool) -> Result<std::fs::File> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    let refuse = || {
        anyhow!(
            "{} is not a regular file (a symlink, fifo, device or directory): refusing to write the pod UUID there",
            path.display()
        )
    };
    let flags = OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(create)
        .mode(0o644)
        .custom_flags(flags.bits())
        .open(path);
    let file = match file {
        Ok(f) => f,
        // ELOOP: a symlink (O_NOFOLLOW); ENXIO: a fifo without a reader or a socket;
        // EISDIR: a directory.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ELOOP | libc::ENXIO | libc::EISDIR)
            ) =>
        {
            return Err(refuse())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} appeared while rkt was creating it: refusing to write the pod UUID there",
                path.display()
            )
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot open {}", path.display())))
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if !meta.file_type().is_file() {
        return Err(refuse());
    }
    Ok(file)
}
