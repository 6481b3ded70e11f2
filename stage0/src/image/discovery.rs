//! Images by appc name: meta discovery of the image and signature URLs, signing keys fetched
//! from the prefix when none is trusted yet, then the download path of [`super::remote`] with
//! the name and labels that were asked for checked against the image (docs/cli.md, "Image
//! arguments").
use aci::schema::Label;
use anyhow::{anyhow, Context, Result};
use remote::discovery::{discover_acis, DiscoveryApp};
use remote::http::{Client, HttpOptions};

use super::keys::{Accept, KeyManager};
use super::remote::{AscSource, Expected};
use super::Fetcher;
use store::ImageKey;

impl Fetcher<'_> {
    /// Discovers `name` with `labels` (which include os and arch), fetches and checks it.
    pub(super) fn discover_and_fetch(
        &self,
        name: &str,
        labels: &[Label],
        signature: Option<&str>,
    ) -> Result<ImageKey> {
        self.debug(&format!("searching for app image {name}"));
        let latest = !labels.iter().any(|l| l.name == "version");
        let mut template_labels: Vec<(String, String)> = labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        if latest {
            template_labels.push(("version".into(), "latest".into()));
        }
        let app = DiscoveryApp {
            name: name.to_string(),
            labels: template_labels,
        };
        let client = self.client()?;
        let found = discover_acis(&client, &app);
        if self.globals.debug {
            for a in &found.attempts {
                self.log(&format!(
                    "meta tag 'ac-discovery' not found on {}: {}",
                    a.prefix, a.error
                ));
            }
        }
        let endpoint = found
            .found
            .first()
            .ok_or_else(|| anyhow!("no endpoints discovered"))
            .with_context(|| format!("discovery failed for {name:?}"))?;
        self.debug(&format!("remote fetching from URL {:?}", endpoint.aci));
        if self.keystore().is_some() {
            self.maybe_fetch_keys(name);
        }
        let asc = match signature {
            Some(s) => AscSource::for_url(&endpoint.aci, Some(s)),
            None => AscSource::Url(endpoint.asc.clone()),
        };
        let expected = Expected { name, labels };
        self.download(&endpoint.aci, &asc, Some(expected), latest)
    }

    /// With no key trusted for the name or a prefix above it, fetches the keys the prefix
    /// announces (reviewed on a terminal unless `--trust-keys-from-https`). Failures are only
    /// reported: a key trusted some other way may still verify the image.
    fn maybe_fetch_keys(&self, name: &str) {
        let keystore = self.globals.keystore();
        match keystore.has_prefix_keys(name) {
            Ok(true) => {
                self.log(&format!(
                    "keys already exist for prefix {name:?}, not fetching again"
                ));
                return;
            }
            Ok(false) => {}
            Err(e) => {
                self.log(&format!("error checking for existing keys: {e}"));
                return;
            }
        }
        let insecure = self.globals.insecure;
        let mut allow_http = false;
        if insecure.skip_pubkey() {
            self.log("signing keys may be downloaded from an insecure connection");
            allow_http = insecure.allow_http();
        }
        // Keys over unverified TLS only when `pubkey` is insecure too.
        if insecure.skip_tls() && !insecure.skip_pubkey() {
            return;
        }
        let credentials = match self.globals.config() {
            Ok(c) => c.credentials,
            Err(e) => {
                self.log(&format!("error determining key location: {e:#}"));
                return;
            }
        };
        let client = match Client::new(HttpOptions {
            skip_tls_verify: insecure.skip_tls(),
            allow_http,
            credentials,
            timeout: None,
        }) {
            Ok(c) => c,
            Err(e) => {
                self.log(&format!("error determining key location: {e}"));
                return;
            }
        };
        let manager = KeyManager {
            keystore: &keystore,
            client: &client,
            trust_keys_from_https: self.globals.trust_keys_from_https,
            debug: self.globals.debug,
        };
        let locations = match manager.discover_locations(name) {
            Ok(l) => l,
            Err(e) => {
                self.log(&format!("error determining key location: {e:#}"));
                return;
            }
        };
        let accept = if self.globals.trust_keys_from_https {
            Accept::Force
        } else {
            Accept::Ask
        };
        if let Err(e) = manager.add_keys(&locations, name, accept) {
            self.log(&format!("error adding keys: {e:#}"));
        }
    }
}
