//! Writing a file the user named (`rkt export`, `rkt image export`) so that a failure leaves
//! nothing behind and nobody can redirect the write: the content goes to a new file with an
//! unguessable name in the destination's directory, created `O_EXCL | O_NOFOLLOW` (a symlink
//! planted at any name there is never followed), synced, then renamed over the destination
//! (which replaces a symlink at the destination itself, never its target).
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;

use crate::sys;

/// The temporary file; removed on drop unless it was renamed into place.
struct TempFile {
    dir: OwnedFd,
    name: OsString,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // The write already failed; a leftover temp file is only clutter.
            let _ = sys::unlink_in(self.dir.as_fd(), &self.name);
        }
    }
}

/// Writes `path` with `write`. Without `replace`, an existing `path` is an error (also one that
/// appeared while writing).
pub fn write_atomically(
    path: &Path,
    replace: bool,
    write: impl FnOnce(&mut File) -> Result<()>,
) -> Result<()> {
    let Some(name) = path.file_name() else {
        bail!("{} names no file", path.display());
    };
    let dir_path = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = sys::open_dir(dir_path)?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut file = sys::create_new_at(dir.as_fd(), &tmp_name)
        .with_context(|| format!("cannot create a temporary file in {}", dir_path.display()))?;
    let mut tmp = TempFile {
        dir,
        name: tmp_name,
        armed: true,
    };
    write(&mut file)?;
    file.flush()
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    match sys::rename_in(tmp.dir.as_fd(), &tmp.name, name, !replace) {
        Ok(()) => {}
        Err(Errno::EEXIST) => bail!("{} exists (try --overwrite)", path.display()),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
    tmp.armed = false;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    /// The temporary names [`write_atomically`] uses for `of`.
    fn is_temp_name(name: &OsStr, of: &str) -> bool {
        let n = name.to_string_lossy();
        n.starts_with(&format!(".{of}.")) && n.ends_with(".tmp")
    }

    #[test]
    fn writes_replace_and_never_follow_planted_links() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out.aci");
        // The old guessable temp name, planted as a symlink to a file that must not change.
        let victim = t.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, t.path().join("out.aci.tmp")).unwrap();
        write_atomically(&out, false, |f| Ok(f.write_all(b"image")?)).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"image");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let e = write_atomically(&out, false, |f| Ok(f.write_all(b"again")?)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{} exists (try --overwrite)", out.display())
        );
        // A symlink at the destination is replaced, not written through.
        std::fs::remove_file(&out).unwrap();
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_atomically(&out, true, |f| Ok(f.write_all(b"new")?)).unwrap();
        assert!(out.symlink_metadata().unwrap().is_file());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // A failed write leaves nothing.
        let e = write_atomically(&t.path().join("failed.aci"), false, |_| bail!("no"));
        assert!(e.is_err());
        let names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            !names.iter().any(|n| is_temp_name(n, "failed.aci")),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|n| is_temp_name(n, "out.aci")),
            "{names:?}"
        );
    }
}
