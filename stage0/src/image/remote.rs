//! Images over HTTP(S) and by appc name: downloaded into an anonymous file, checked (name and
//! labels asked for, signature by a trusted key) and only then imported, so that a failed
//! fetch leaves nothing in the store (docs/cli.md, "Image arguments").
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use aci::schema::{ImageManifest, Label};
use anyhow::{anyhow, bail, Context, Result};
use remote::http::{Client, Fetched, HttpOptions};
use remote::keystore::Keystore;
use remote::openpgp::{DetachedSignatures, PublicKey, VerifyError};
use store::{ImageKey, ImportOptions, RemoteRecord};

use super::{Fetcher, PullPolicy};

/// Signature files larger than this are refused.
const SIGNATURE_LIMIT: u64 = 1 << 20;

/// Where an image's detached signature is.
#[derive(Debug, Clone)]
pub enum AscSource {
    Url(String),
    File(PathBuf),
}

impl AscSource {
    /// `--signature` when given, else the image URL with `.aci` replaced by `.aci.asc`.
    pub fn for_url(url: &str, signature: Option<&str>) -> AscSource {
        match signature {
            Some(s) if s.contains("://") => AscSource::Url(s.to_string()),
            Some(s) => AscSource::File(PathBuf::from(s)),
            None => AscSource::Url(asc_url(url)),
        }
    }

    fn location(&self) -> String {
        match self {
            AscSource::Url(u) => u.clone(),
            AscSource::File(p) => p.display().to_string(),
        }
    }
}

/// `<url without .aci>.aci.asc`, keeping a query string where it is.
pub fn asc_url(url: &str) -> String {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let base = path.strip_suffix(".aci").unwrap_or(path);
    match query {
        Some(q) => format!("{base}.aci.asc?{q}"),
        None => format!("{base}.aci.asc"),
    }
}

/// What discovery asked for: the image must carry this name and these labels.
pub struct Expected<'a> {
    pub name: &'a str,
    pub labels: &'a [Label],
}

/// A signature that is here, or that the server asked to fetch after the image (HTTP 202).
enum Signature {
    Ready(DetachedSignatures),
    Deferred,
}

impl Fetcher<'_> {
    /// The HTTP(S) client of this invocation: `--insecure-options=tls,http` and `auth.d`.
    pub(super) fn client(&self) -> Result<Client> {
        let insecure = self.globals.insecure;
        Client::new(HttpOptions {
            skip_tls_verify: insecure.skip_tls(),
            allow_http: insecure.allow_http(),
            credentials: self.globals.config()?.credentials.clone(),
            timeout: None,
        })
        .context("cannot set up HTTPS")
    }

    /// The keystore, or none with `--insecure-options=image` (then nothing is checked).
    pub fn keystore(&self) -> Option<Keystore> {
        (!self.globals.insecure.skip_image()).then(|| self.globals.keystore())
    }

    /// `http(s)://...` image URLs.
    pub(super) fn fetch_url(&self, url: &str, signature: Option<&str>) -> Result<ImageKey> {
        if !url.starts_with("https://") && !self.globals.insecure.allow_http() {
            bail!("refusing to fetch {url} over plain HTTP: use https, or pass --insecure-options=http");
        }
        if self.policy != PullPolicy::Update {
            if let Some(rec) = self.store.remote(url)? {
                self.debug(&format!("using image from local store for url {url}"));
                return Ok(rec.image_key()?);
            }
        }
        if self.policy == PullPolicy::Never {
            bail!("unable to fetch image from URL {url:?}: either image was not found in the store or store was disabled and fetching from remote yielded nothing or it was disabled");
        }
        self.debug(&format!("remote fetching from URL {url:?}"));
        self.download(url, &AscSource::for_url(url, signature), None, false)
    }

    /// Downloads, checks and imports one image; reuses the stored copy when the server's
    /// `max-age` still covers it or it answers 304 to its `ETag`.
    pub(super) fn download(
        &self,
        url: &str,
        asc: &AscSource,
        expected: Option<Expected<'_>>,
        latest: bool,
    ) -> Result<ImageKey> {
        let cached = self.store.remote(url)?;
        if let Some(rec) = &cached {
            if rec.is_fresh() {
                self.debug(&format!("image for {url} isn't expired, not fetching."));
                return Ok(rec.image_key()?);
            }
        }
        self.debug(&format!("fetching image from {url}"));
        let client = self.client()?;
        let keystore = self.keystore();
        let mut signature = match &keystore {
            Some(_) => Some(self.signature(&client, asc)?),
            None => None,
        };
        // With a name known before the download, an untrusted signer is refused without
        // transferring the image.
        if let (Some(ks), Some(exp), Some(Signature::Ready(sigs))) =
            (&keystore, &expected, &signature)
        {
            let keyring = ks.keyring(exp.name)?;
            if let Err(e) = sigs.signer(&keyring) {
                return Err(self.signature_error(e, exp.name));
            }
        }

        let etag = cached.as_ref().and_then(|r| r.etag.as_deref());
        let response = client
            .get(url, etag)
            .with_context(|| format!("error downloading ACI {url}"))?;
        let download = match response {
            Fetched::NotModified => {
                let rec = cached.expect("bug: 304 without an ETag sent");
                self.debug(&format!(
                    "image for {url} has not changed, using the stored copy"
                ));
                let key = rec.image_key()?;
                self.store.write_remote(&RemoteRecord::new(
                    url,
                    &key,
                    rec.etag.clone(),
                    rec.max_age,
                ))?;
                return Ok(key);
            }
            Fetched::Deferred => {
                bail!("error downloading ACI {url}: the server deferred the image itself")
            }
            Fetched::Body(d) => d,
        };
        let (etag, max_age) = (download.etag.clone(), download.max_age);
        let mut file = self.store.download_file()?;
        copy_with_progress(url, download, &mut file)
            .with_context(|| format!("error downloading ACI {url}"))?;

        if let Some(Signature::Deferred) = signature {
            signature = match self.signature(&client, asc)? {
                Signature::Deferred => bail!("error downloading the signature file: server asked to defer the download again"),
                ready => Some(ready),
            };
        }

        let manifest = read_manifest(&mut file, self.store.limits())
            .with_context(|| format!("error reading the image downloaded from {url}"))?;
        if let Some(exp) = &expected {
            check_name_and_labels(&manifest, exp)?;
        }
        if let (Some(ks), Some(Signature::Ready(sigs))) = (&keystore, &signature) {
            file.seek(SeekFrom::Start(0))?;
            let keyring = ks.keyring(&manifest.name)?;
            let signer = sigs
                .verify(&keyring, &mut file)
                .map_err(|e| self.signature_error(e, &manifest.name))
                .with_context(|| format!("image {:?} verification failed", manifest.name))?;
            print_identities(signer);
        }

        file.seek(SeekFrom::Start(0))?;
        let opts = ImportOptions {
            url: Some(url.to_string()),
            latest,
            render: true,
            ..ImportOptions::default()
        };
        let info = self
            .store
            .import(&mut file, &opts)
            .with_context(|| format!("cannot import the image downloaded from {url}"))?;
        let key = info.image_key();
        self.store
            .write_remote(&RemoteRecord::new(url, &key, etag, max_age))?;
        Ok(key)
    }

    fn signature(&self, client: &Client, asc: &AscSource) -> Result<Signature> {
        self.debug(&format!("downloading signature from {}", asc.location()));
        let bytes = match asc {
            AscSource::File(path) => std::fs::read(path)
                .with_context(|| format!("open {}", path.display()))
                .context("error opening signature file")?,
            AscSource::Url(url) => match client
                .get(url, None)
                .with_context(|| format!("failed to download {url:?}"))
                .context("error downloading the signature file")?
            {
                Fetched::Body(d) => d
                    .read_limited(SIGNATURE_LIMIT)
                    .context("error downloading the signature file")?,
                Fetched::Deferred => {
                    self.log("server requested deferring the signature download");
                    return Ok(Signature::Deferred);
                }
                Fetched::NotModified => {
                    bail!("unexpected cache reuse request for signature {url:?}")
                }
            },
        };
        let sigs = DetachedSignatures::parse(&bytes)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("invalid signature file {}", asc.location()))?;
        Ok(Signature::Ready(sigs))
    }

    /// A verification error; an unknown signer also gets rkt's hint to trust a key.
    pub(super) fn signature_error(&self, err: VerifyError, name: &str) -> anyhow::Error {
        if matches!(err, VerifyError::UnknownIssuer) {
            self.log("if you expected the signing key to change, try running:");
            self.log(&format!("    rkt trust --prefix {name:?}"));
        }
        anyhow!(err)
    }

    /// Verifies a local image file against its signature file (`--signature` or `<file>.asc`).
    pub(super) fn verify_file(&self, file: &mut File, asc: &std::path::Path) -> Result<()> {
        let Some(ks) = self.keystore() else {
            return Ok(());
        };
        let bytes = std::fs::read(asc).map_err(|e| {
            anyhow!(
                "error opening signature file {}: {e}: sign the image and trust its key with `rkt trust`, or pass --insecure-options=image",
                asc.display()
            )
        })?;
        let sigs = DetachedSignatures::parse(&bytes)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("invalid signature file {}", asc.display()))?;
        let manifest = read_manifest(file, self.store.limits())?;
        file.seek(SeekFrom::Start(0))?;
        let keyring = ks.keyring(&manifest.name)?;
        let signer = sigs
            .verify(&keyring, file)
            .map_err(|e| self.signature_error(e, &manifest.name))
            .with_context(|| format!("image {:?} verification failed", manifest.name))?;
        print_identities(signer);
        file.seek(SeekFrom::Start(0))?;
        Ok(())
    }

    /// `image: ...` on stderr, as rkt's image fetchers report.
    pub(super) fn log(&self, msg: &str) {
        eprintln!("image: {msg}");
    }
}

fn read_manifest(file: &mut File, limits: store::Limits) -> Result<ImageManifest> {
    file.seek(SeekFrom::Start(0))?;
    let manifest = aci::archive::peek_manifest(&mut *file, limits)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(manifest)
}

/// The name and every asked-for label must be the image's.
fn check_name_and_labels(m: &ImageManifest, exp: &Expected<'_>) -> Result<()> {
    if m.name != exp.name {
        bail!(
            "error when reading the app name: {:?} expected but {:?} found",
            exp.name,
            m.name
        );
    }
    for want in exp.labels {
        match m.labels.iter().find(|l| l.name == want.name) {
            Some(have) if have.value == want.value => {}
            Some(have) => bail!(
                "requested value for label {:?}: {:?} differs from fetched aci label value: {:?}",
                want.name,
                want.value,
                have.value
            ),
            None => bail!(
                "requested label {:?} not provided by the image manifest",
                want.name
            ),
        }
    }
    Ok(())
}

/// `image: signature verified:` and the signer's identities, as rkt prints them.
fn print_identities(key: &PublicKey) {
    let mut msg = String::from("image: signature verified:");
    for id in key.identities() {
        msg.push_str(&format!("\n  {id}"));
    }
    eprintln!("{msg}");
}

/// Copies the body into `out`, with a progress bar on stderr when it is a terminal. A body
/// shorter than its `Content-Length` is an error.
fn copy_with_progress(url: &str, download: remote::http::Download, out: &mut File) -> Result<()> {
    let expected = download.length;
    let bar =
        indicatif::ProgressBar::with_draw_target(expected, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "Downloading {msg}: {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    let mut body = download.body;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(anyhow!(e));
            }
        };
        out.write_all(&buf[..n])
            .context("cannot write the download")?;
        total += n as u64;
        bar.set_position(total);
    }
    bar.finish_and_clear();
    if let Some(len) = expected {
        if total != len {
            bail!("truncated download: got {total} of {len} bytes");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_urls_follow_the_image_url() {
        assert_eq!(asc_url("https://e.com/a.aci"), "https://e.com/a.aci.asc");
        assert_eq!(asc_url("https://e.com/a"), "https://e.com/a.aci.asc");
        assert_eq!(
            asc_url("https://e.com/a.aci?x=1"),
            "https://e.com/a.aci.asc?x=1"
        );
    }
}
