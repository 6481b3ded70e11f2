//! Docker/OCI images for the registry tests: layers made with the `tar` crate (busybox from
//! Debian's busybox-static, files, whiteouts), written as an OCI image layout that Debian's
//! `skopeo` pushes into Debian's `docker-registry`.
use std::io::Write;
use std::path::Path;
use std::process::Command;

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A gzip-compressed layer and its digests.
#[derive(Clone)]
pub struct OciLayer {
    pub blob: Vec<u8>,
    pub digest: String,
    pub diff_id: String,
}

/// Builds a layer from entries in order.
pub struct LayerBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder::new()
    }
}

impl LayerBuilder {
    pub fn new() -> LayerBuilder {
        LayerBuilder {
            tar: tar::Builder::new(Vec::new()),
        }
    }

    pub fn dir(mut self, path: &str) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        self.tar
            .append_data(&mut h, path, std::io::empty())
            .unwrap();
        self
    }

    pub fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        self.tar.append_data(&mut h, path, data).unwrap();
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        self.tar.append_link(&mut h, path, target).unwrap();
        self
    }

    /// An entry whose name is written raw (for hostile layers).
    pub fn raw_file(mut self, name: &[u8], data: &[u8]) -> Self {
        let mut h = tar::Header::new_old();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        self.tar.append(&h, data).unwrap();
        self
    }

    /// `bin/busybox` and `bin/sh`.
    pub fn busybox(self) -> Self {
        let busybox = std::fs::read(crate::images::BUSYBOX).expect("busybox-static");
        self.dir("bin/")
            .file("bin/busybox", 0o755, &busybox)
            .symlink("bin/sh", "busybox")
            .symlink("bin/cat", "busybox")
            .symlink("bin/echo", "busybox")
            .symlink("bin/ls", "busybox")
    }

    pub fn build(self) -> OciLayer {
        let tar = self.tar.into_inner().unwrap();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let blob = gz.finish().unwrap();
        OciLayer {
            digest: sha256(&blob),
            diff_id: sha256(&tar),
            blob,
        }
    }
}

fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let path = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    digest
}

/// Writes an OCI image layout in `dir` with one image tagged `tag`; `config` is the
/// container config (`Entrypoint`, `Cmd`, `Env`, ...). Returns the image config's digest.
pub fn write_layout(
    dir: &Path,
    tag: &str,
    config: serde_json::Value,
    layers: &[OciLayer],
) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let image_config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
    });
    let config_bytes = serde_json::to_vec(&image_config).unwrap();
    let config_digest = write_blob(dir, &config_bytes);
    let mut layer_descs = Vec::new();
    for l in layers {
        write_blob(dir, &l.blob);
        layer_descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": l.digest,
            "size": l.blob.len(),
        }));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": layer_descs,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = write_blob(dir, &manifest_bytes);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    config_digest
}

/// Debian's `docker-registry` (the CNCF distribution registry) serving HTTPS on a loopback
/// port, with its storage under `dir`. Stopped (by its PID) when dropped.
pub struct Registry {
    child: std::process::Child,
    pub port: u16,
}

impl Registry {
    pub fn start(dir: &Path, pki: &crate::https::Pki) -> Registry {
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n",
            dir.join("storage").display(),
            pki.cert_pem().display(),
            pki.key_pem().display(),
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        let reg = Registry { child, port };
        let up = crate::TestEnv::wait_for(std::time::Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up,
            "docker-registry did not start: {:?}",
            std::fs::read_to_string(dir.join("registry.log"))
        );
        reg
    }

    /// Pushes the layout's `tag` to `repo:tag` with skopeo.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str) {
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://127.0.0.1:{}/{repo}:{tag}", self.port))
            .output()
            .expect("skopeo (apt-get install skopeo)");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
