//! Adding trusted keys: `rkt trust` and the automatic key fetch when an image is fetched by
//! name (docs/cli.md, "rkt trust"). Keys come from files, http(s) URLs, or the
//! `ac-discovery-pubkeys` meta tags of the prefix; each is shown (fingerprint, subkeys,
//! identities) and accepted after review on a terminal, or without review when asked.
use std::io::{BufRead, IsTerminal};

use anyhow::{anyhow, bail, Context, Result};
use remote::discovery::discover_keys;
use remote::http::{Client, Fetched};
use remote::keystore::Keystore;
use remote::openpgp::PublicKey;

/// Keys larger than this are refused.
const KEY_LIMIT: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Ask on the terminal (refused without one).
    Ask,
    /// Trust without asking.
    Force,
}

pub struct KeyManager<'a> {
    pub keystore: &'a Keystore,
    pub client: &'a Client,
    /// `--trust-keys-from-https`: keys downloaded over verified HTTPS need no review.
    pub trust_keys_from_https: bool,
    pub debug: bool,
}

impl KeyManager<'_> {
    /// Key URLs announced by the prefix's discovery pages.
    pub fn discover_locations(&self, prefix: &str) -> Result<Vec<String>> {
        if prefix.is_empty() {
            bail!("empty prefix");
        }
        let found = discover_keys(self.client, prefix);
        if self.debug {
            for a in &found.attempts {
                eprintln!(
                    "pubkey: meta tag 'ac-discovery-pubkeys' not found on {}: {}",
                    a.prefix, a.error
                );
            }
        }
        if found.found.is_empty() {
            bail!("meta discovery on {prefix} resulted in no keys");
        }
        Ok(found.found)
    }

    /// Shows, reviews and stores each key; an empty prefix stores root keys.
    pub fn add_keys(&self, locations: &[String], prefix: &str, accept: Accept) -> Result<()> {
        for location in locations {
            let armored = self
                .get_key(location)
                .with_context(|| format!("error accessing the key {location}"))?;
            let key = PublicKey::from_armored(&armored)
                .map_err(|e| anyhow!(e))
                .with_context(|| format!("error displaying the key {location}"))?;
            display_key(prefix, location, &key);
            let mut accept = accept;
            if self.trust_keys_from_https && location.starts_with("https://") {
                accept = Accept::Force;
            }
            if accept == Accept::Ask {
                if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
                    eprintln!("pubkey: To trust the key for {prefix:?}, do one of the following:");
                    eprintln!("pubkey:  - call rkt with --trust-keys-from-https");
                    eprintln!("pubkey:  - run: rkt trust --prefix {prefix:?}");
                    bail!("error reviewing key: unable to ask user to review fingerprint due to lack of tty");
                }
                if !review_key().context("error reviewing key")? {
                    eprintln!("pubkey: not trusting {location:?}");
                    continue;
                }
                println!("Trusting {location:?} for prefix {prefix:?} after fingerprint review.");
            } else {
                println!("Trusting {location:?} for prefix {prefix:?} without fingerprint review.");
            }
            if prefix.is_empty() {
                let path = self
                    .keystore
                    .store_root(&key)
                    .context("error adding root key")?;
                println!("Added root key at {:?}", path.display().to_string());
            } else {
                let path = self
                    .keystore
                    .store_prefix(prefix, &key)
                    .with_context(|| format!("error adding key for prefix {prefix:?}"))?;
                println!(
                    "Added key for prefix {prefix:?} at {:?}",
                    path.display().to_string()
                );
            }
        }
        Ok(())
    }

    /// A key file, or a download over HTTPS (plain HTTP only when the client allows it).
    fn get_key(&self, location: &str) -> Result<Vec<u8>> {
        match location.split_once("://").map(|(s, _)| s) {
            None => std::fs::read(location).with_context(|| format!("open {location}")),
            Some("http") if !self.client.options().allow_http => {
                bail!("--insecure-allow-http required for http URLs")
            }
            Some("http" | "https") => {
                match self
                    .client
                    .get(location, None)
                    .context("error getting key")?
                {
                    Fetched::Body(d) => Ok(d.read_limited(KEY_LIMIT)?),
                    Fetched::Deferred => bail!("bad HTTP status code: 202"),
                    Fetched::NotModified => bail!("bad HTTP status code: 304"),
                }
            }
            Some(_) => bail!("only local files and http or https URLs supported"),
        }
    }
}

/// The key's summary: where it is trusted (stderr), fingerprints and identities (stdout).
fn display_key(prefix: &str, location: &str, key: &PublicKey) {
    eprintln!("pubkey: prefix: {prefix:?}\nkey: {location:?}");
    println!("gpg key fingerprint is: {}", key.fingerprint_display());
    for sub in key.subkey_fingerprints_display() {
        println!("    Subkey fingerprint: {sub}");
    }
    for id in key.identities() {
        println!("\t{id}");
    }
}

/// Asks until the answer is `yes` or `no`.
fn review_key() -> Result<bool> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    loop {
        println!("Are you sure you want to trust this key (yes/no)?");
        let mut line = String::new();
        if lines.read_line(&mut line).context("error reading input")? == 0 {
            bail!("error reading input: EOF");
        }
        match line.as_str() {
            "yes\n" => return Ok(true),
            "no\n" => return Ok(false),
            _ => println!("Please enter 'yes' or 'no'"),
        }
    }
}
