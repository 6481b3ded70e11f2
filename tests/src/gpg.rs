//! Keys and signatures made by real GnuPG in a temporary GNUPGHOME.
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Gpg {
    home: PathBuf,
}

impl Gpg {
    /// A fresh GNUPGHOME under `dir`.
    pub fn new(dir: &Path) -> Gpg {
        let home = dir.join("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        Gpg { home }
    }

    fn gpg(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .env("GNUPGHOME", &self.home)
            .args([
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .output()
            .expect("run gpg");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Generates a signing key for `uid` (`Name <email>`) with `algo` (`ed25519`, `rsa2048`).
    pub fn generate(&self, uid: &str, algo: &str) {
        self.gpg(&["--quick-gen-key", uid, algo, "sign", "never"]);
    }

    /// The armored public key of `uid`.
    pub fn export(&self, uid: &str) -> Vec<u8> {
        self.gpg(&["--armor", "--export", uid])
    }

    /// The lower-case fingerprint of `uid`'s primary key (the keystore's file name).
    pub fn fingerprint(&self, uid: &str) -> String {
        let out = String::from_utf8(self.gpg(&["--with-colons", "--fingerprint", uid])).unwrap();
        out.lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_ascii_lowercase()
    }

    /// Writes an armored detached signature of `file` by `uid` to `out`.
    pub fn sign(&self, uid: &str, file: &Path, out: &Path) {
        self.gpg(&[
            "--local-user",
            uid,
            "--armor",
            "--detach-sign",
            "--output",
            &out.display().to_string(),
            &file.display().to_string(),
        ]);
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.home)
            .args(["--kill", "gpg-agent"])
            .output();
    }
}
