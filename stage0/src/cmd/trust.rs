//! `rkt trust`: adds keys to the local keystore (docs/cli.md, "rkt trust").
use anyhow::{bail, Context, Result};
use remote::http::{Client, HttpOptions};

use crate::cli::TrustArgs;
use crate::globals::Globals;
use crate::image::keys::{Accept, KeyManager};

pub fn run(globals: &Globals, args: &TrustArgs) -> Result<i32> {
    let root = args.root.unwrap_or(false);
    if args.prefix.is_empty() && !root {
        if !args.keys.is_empty() {
            bail!(
                "aborting due to implicit unbounded trust (root domain)\n\
                 Please provide a specific domain prefix to trust:\n    \
                 rkt trust --prefix \"example.com/foo\" [PUBKEY]\n\
                 Otherwise, trust at the root domain (not recommended) must be explicitly requested:\n    \
                 rkt trust --root PUBKEY"
            );
        }
        bail!("give --prefix=PREFIX (keys found by discovery, or the given PUBKEY files or URLs) or --root PUBKEY");
    }
    if !args.prefix.is_empty() && root {
        bail!("--root and --prefix usage mutually exclusive");
    }
    if globals.insecure.skip_image() {
        // As rkt: without image checks there is no keystore to add to.
        bail!("could not get the keystore (--insecure-options=image disables it)");
    }
    if let Some((scheme, _)) = args.prefix.split_once("://") {
        bail!("--prefix must not contain a URL scheme, omit {scheme}://");
    }
    if root && args.keys.is_empty() {
        bail!("--root needs the key files or URLs to trust (there is no discovery for root keys)");
    }
    let client = Client::new(HttpOptions {
        skip_tls_verify: globals.insecure.skip_tls(),
        allow_http: args.insecure_allow_http.unwrap_or(false),
        credentials: globals.config()?.credentials,
        timeout: None,
    })
    .context("cannot set up HTTPS")?;
    let keystore = globals.keystore();
    let manager = KeyManager {
        keystore: &keystore,
        client: &client,
        trust_keys_from_https: globals.trust_keys_from_https,
        debug: globals.debug,
    };
    let locations = if args.keys.is_empty() {
        manager
            .discover_locations(&args.prefix)
            .context("error determining key location")?
    } else {
        args.keys.clone()
    };
    let accept = if args.skip_fingerprint_review.unwrap_or(false) {
        Accept::Force
    } else {
        Accept::Ask
    };
    manager
        .add_keys(&locations, &args.prefix, accept)
        .context("error adding keys")?;
    Ok(0)
}
