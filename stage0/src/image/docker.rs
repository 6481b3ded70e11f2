//! `docker://` images: resolved in a Docker registry (v2 API), layers downloaded in parallel
//! and cached by digest, squashed into one ACI with the image config mapped as docker2aci
//! does, imported, and remembered by their registry URL and manifest digest (docs/cli.md,
//! "Image arguments"). As in rkt, they need `--insecure-options=image`: Docker images carry
//! no appc signatures.
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use remote::docker::convert::to_manifest;
use remote::docker::registry::{Descriptor, Registry};
use remote::docker::squash::{squash, Layer};
use remote::docker::DockerRef;
use remote::http::{Client, HttpOptions};
use store::{ImageKey, ImportOptions, RemoteRecord};

use super::{host_os_arch, Fetcher, PullPolicy};

/// Layers downloaded at once.
const PARALLEL_LAYERS: usize = 4;

/// Where layer blobs are kept by digest, so images sharing layers download them once.
const BLOB_CACHE: &str = "docker-blobs";

impl Fetcher<'_> {
    pub(super) fn fetch_docker(&self, arg: &str, reference: &str) -> Result<ImageKey> {
        let dref = DockerRef::parse(reference).map_err(|e| anyhow!(e))?;
        let url = format!("docker://{}", dref.canonical());
        if self.policy != PullPolicy::Update {
            if let Some(rec) = self.store.remote(&url)? {
                self.debug(&format!("using image from local store for url {url}"));
                return Ok(rec.image_key()?);
            }
        }
        if self.policy == PullPolicy::Never {
            bail!("unable to fetch docker image from URL {url:?}: either image was not found in the store or store was disabled and fetching from remote yielded nothing or it was disabled");
        }
        if !self.globals.insecure.skip_image() {
            bail!("signature verification for docker images is not supported (try --insecure-options=image)");
        }
        self.debug(&format!("fetching image from {url}"));
        self.convert(arg, &dref, &url)
            .with_context(|| format!("error converting docker image {arg:?} to ACI"))
    }

    fn convert(&self, arg: &str, dref: &DockerRef, url: &str) -> Result<ImageKey> {
        let insecure = self.globals.insecure;
        let client = Client::new(HttpOptions {
            skip_tls_verify: insecure.skip_tls(),
            allow_http: insecure.allow_http(),
            ..HttpOptions::default()
        })
        .context("cannot set up HTTPS")?;
        let basic = self
            .globals
            .config()?
            .docker_per_registry
            .get(&dref.registry)
            .map(|c| (c.user.clone(), c.password.clone()));
        let registry = Registry::new(&client, dref, basic);
        let (_, arch) = host_os_arch();
        let docker_arch = if arch == "aarch64" { "arm64" } else { arch };
        let resolved = registry
            .resolve(&dref.reference, docker_arch)
            .map_err(|e| anyhow!(e))?;

        // The same manifest as last time: the stored image is current.
        if let Some(rec) = self.store.remote(url)? {
            if rec.etag.as_deref() == Some(resolved.manifest_digest.as_str()) {
                self.debug(&format!(
                    "image for {url} has not changed, using the stored copy"
                ));
                let key = rec.image_key()?;
                self.store
                    .write_remote(&RemoteRecord::new(url, &key, rec.etag.clone(), 0))?;
                return Ok(key);
            }
        }

        let layers = self.download_layers(&registry, &resolved.layers)?;
        let manifest = to_manifest(
            dref,
            arg.strip_prefix("docker://")
                .or_else(|| arg.strip_prefix("docker:"))
                .unwrap_or(arg),
            &resolved.config,
            &resolved.config_digest,
            &resolved.manifest_digest,
        )
        .map_err(|e| anyhow!(e))?;
        let opts = ImportOptions {
            url: Some(url.to_string()),
            latest: dref.tag() == "latest",
            render: true,
            ..ImportOptions::default()
        };
        let info = self.squash_and_import(&layers, &manifest.to_json(), &opts)?;
        let key = info.image_key();
        self.store.write_remote(&RemoteRecord::new(
            url,
            &key,
            Some(resolved.manifest_digest),
            0,
        ))?;
        Ok(key)
    }

    /// Squashes the layers into a pipe that the store imports from at the same time: the
    /// squashed image is never written out whole.
    fn squash_and_import(
        &self,
        layers: &[Layer],
        manifest: &[u8],
        opts: &ImportOptions,
    ) -> Result<store::ImageInfo> {
        let (reader, writer) = std::io::pipe().context("cannot create a pipe")?;
        let limits = self.store.limits();
        let complete = AtomicBool::new(false);
        let mut reader = UntilComplete {
            inner: reader,
            complete: &complete,
        };
        std::thread::scope(|s| {
            let complete = &complete;
            let squasher = s.spawn(move || {
                let mut writer = writer;
                let result = squash(layers, manifest, &mut writer, limits);
                // Set before the writer closes: the importer sees the end of the stream only
                // after this, and a squash that failed midway must not look like a short image.
                complete.store(result.is_ok(), Ordering::SeqCst);
                drop(writer);
                result
            });
            let imported = self.store.import(&mut reader, opts);
            // Whatever the import left unread is drained, so that the squasher never blocks
            // on (or writes to) a pipe nobody reads.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            let squashed = squasher.join().unwrap_or_else(|_| {
                Err(remote::docker::DockerError::Invalid {
                    what: "image".into(),
                    detail: "the squashing thread panicked".into(),
                })
            });
            // A layer's own error says more than the import's view of a cut stream.
            squashed.map_err(|e| anyhow!(e))?;
            imported.context("cannot import the converted image")
        })
    }

    /// Every layer in the blob cache (downloaded, verified and renamed into place when
    /// missing), bottom first.
    fn download_layers(
        &self,
        registry: &Registry<'_>,
        layers: &[Descriptor],
    ) -> Result<Vec<Layer>> {
        let cache = self.store.dir().join(BLOB_CACHE);
        std::fs::create_dir_all(&cache)
            .with_context(|| format!("cannot create {}", cache.display()))?;
        let paths: Vec<PathBuf> = layers
            .iter()
            .map(|d| blob_path(&cache, &d.digest))
            .collect::<Result<_>>()?;
        let missing: Vec<usize> = (0..layers.len()).filter(|&i| !paths[i].is_file()).collect();
        for chunk in missing.chunks(PARALLEL_LAYERS) {
            let results: Vec<Result<()>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&i| {
                        let (desc, path) = (&layers[i], &paths[i]);
                        s.spawn(move || self.download_blob(registry, desc, path))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow!("layer download panicked")))
                    })
                    .collect()
            });
            for r in results {
                r?;
            }
        }
        Ok(layers
            .iter()
            .zip(paths)
            .map(|(d, path)| Layer {
                path,
                digest: d.digest.clone(),
            })
            .collect())
    }

    fn download_blob(&self, registry: &Registry<'_>, desc: &Descriptor, path: &Path) -> Result<()> {
        self.debug(&format!("downloading layer {}", desc.digest));
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let result = (|| -> Result<()> {
            let mut file =
                File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            registry
                .blob_to(&desc.digest, &mut file)
                .map_err(|e| anyhow!(e))?;
            file.flush()?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot store layer {}", desc.digest))?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// The read end of the squash pipe: its end is an error unless the squash completed.
struct UntilComplete<'a> {
    inner: std::io::PipeReader,
    complete: &'a AtomicBool,
}

impl Read for UntilComplete<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.complete.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("the squashed image was cut short"));
        }
        Ok(n)
    }
}

/// `<cache>/sha256-<hex>`, for a well-formed digest only.
fn blob_path(cache: &Path, digest: &str) -> Result<PathBuf> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
        .ok_or_else(|| anyhow!("unsupported layer digest {digest:?}"))?;
    Ok(cache.join(format!("sha256-{hex}")))
}
