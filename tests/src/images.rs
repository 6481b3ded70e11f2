//! Test images: a busybox root filesystem plus whatever a test needs, packed by `aci`.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use aci::archive::{AciBuilder, Compression};
use aci::schema::{Annotation, App, EnvVar, EventHandler, ImageManifest, Label, MountPoint};

/// Where Debian's busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Busybox applet names (for `/bin/<applet>` links).
fn applets() -> Vec<String> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox-static must be installed (apt-get install busybox-static)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|a| *a != "busybox")
        .map(str::to_string)
        .collect()
}

/// Describes a test image.
#[derive(Clone)]
pub struct ImageSpec {
    pub manifest: ImageManifest,
    pub files: Vec<(String, u32, Vec<u8>)>,
    pub symlinks: Vec<(String, String)>,
    pub dirs: Vec<(String, u32)>,
    pub with_busybox: bool,
    pub compression: Compression,
}

impl ImageSpec {
    /// An image named `name` (version 1.0.0, linux/amd64) running `exec` as root.
    pub fn new(name: &str, exec: &[&str]) -> ImageSpec {
        let manifest = ImageManifest {
            ac_kind: "ImageManifest".into(),
            ac_version: "0.8.11".into(),
            name: name.into(),
            labels: vec![
                label("version", "1.0.0"),
                label("os", "linux"),
                label("arch", "amd64"),
            ],
            app: Some(App {
                exec: exec.iter().map(|s| s.to_string()).collect(),
                user: "0".into(),
                group: "0".into(),
                ..App::default()
            }),
            ..ImageManifest::default()
        };
        ImageSpec {
            manifest,
            files: vec![
                ("etc/passwd".into(), 0o644, b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:100:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".to_vec()),
                ("etc/group".into(), 0o644, b"root:x:0:\nusers:x:100:\nstaff:x:50:user\nnogroup:x:65534:\n".to_vec()),
            ],
            symlinks: Vec::new(),
            dirs: vec![("tmp".into(), 0o1777)],
            with_busybox: true,
            compression: Compression::Gzip,
        }
    }

    /// A shell command as the exec: `/bin/sh -c SCRIPT`.
    pub fn shell(name: &str, script: &str) -> ImageSpec {
        ImageSpec::new(name, &["/bin/sh", "-c", script])
    }

    pub fn app(&mut self) -> &mut App {
        self.manifest.app.as_mut().expect("test images have an app")
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.app().environment.push(EnvVar {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    pub fn user(mut self, user: &str, group: &str) -> Self {
        self.app().user = user.into();
        self.app().group = group.into();
        self
    }

    pub fn working_dir(mut self, dir: &str) -> Self {
        self.app().working_directory = dir.into();
        self
    }

    pub fn mount_point(mut self, name: &str, path: &str, read_only: bool) -> Self {
        self.app().mount_points.push(MountPoint {
            name: name.into(),
            path: path.into(),
            read_only,
        });
        self
    }

    pub fn handler(mut self, kind: &str, exec: &[&str]) -> Self {
        self.app().event_handlers.push(EventHandler {
            name: kind.into(),
            exec: exec.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    pub fn label(mut self, name: &str, value: &str) -> Self {
        self.manifest.labels.retain(|l| l.name != name);
        self.manifest.labels.push(label(name, value));
        self
    }

    pub fn without_label(mut self, name: &str) -> Self {
        self.manifest.labels.retain(|l| l.name != name);
        self
    }

    pub fn isolator(mut self, name: &str, value: serde_json::Value) -> Self {
        self.app().isolators.push(aci::schema::Isolator {
            name: name.into(),
            value,
        });
        self
    }

    pub fn annotation(mut self, name: &str, value: &str) -> Self {
        self.manifest.annotations.push(Annotation {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    pub fn file(mut self, path: &str, mode: u32, content: &[u8]) -> Self {
        self.files.retain(|(p, _, _)| p != path);
        self.files.push((path.into(), mode, content.to_vec()));
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.symlinks.push((path.into(), target.into()));
        self
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        self.dirs.push((path.into(), mode));
        self
    }

    pub fn no_app(mut self) -> Self {
        self.manifest.app = None;
        self
    }

    /// Adds the static `pod-attack` binary at `/bin/pod-attack` (see tests/attack).
    pub fn with_attack(self) -> Self {
        let path = crate::env::attack_bin();
        let binary = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (build it with `make attack`)", path.display()));
        self.file("bin/pod-attack", 0o755, &binary)
    }

    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    /// Writes the ACI to `dir/<file name>` and returns its path.
    pub fn build(&self, dir: &Path, file_name: &str) -> PathBuf {
        let path = dir.join(file_name);
        let file = File::create(&path).expect("create test image");
        let mut b =
            AciBuilder::new(file, self.compression, &self.manifest).expect("start test image");
        self.add_contents(&mut b);
        b.finish().expect("finish test image");
        path
    }

    /// Adds the image's directories, busybox and files to a builder started with its manifest.
    pub fn add_contents<W: std::io::Write>(&self, b: &mut AciBuilder<W>) {
        for (d, mode) in &self.dirs {
            b.add_dir(d, *mode).expect("add dir");
        }
        if self.with_busybox {
            let busybox =
                std::fs::read(BUSYBOX).expect("read /bin/busybox (install busybox-static)");
            b.add_file("bin/busybox", 0o755, &busybox)
                .expect("add busybox");
            for applet in applets() {
                // A file the test puts there instead (a trojaned /bin/sh, say) wins.
                if self
                    .files
                    .iter()
                    .any(|(p, _, _)| *p == format!("bin/{applet}"))
                {
                    continue;
                }
                b.add_symlink(&format!("bin/{applet}"), "busybox")
                    .expect("add applet");
            }
        }
        for (p, mode, content) in &self.files {
            b.add_file(p, *mode, content).expect("add file");
        }
        for (p, target) in &self.symlinks {
            b.add_symlink(p, target).expect("add symlink");
        }
    }
}

pub fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.into(),
        value: value.into(),
    }
}
