//! `rkt fetch IMAGE...`: imports images and prints their IDs.
use anyhow::{bail, Context, Result};

use crate::cli::apps::{self, AppsCommand};
use crate::globals::Globals;
use crate::image::{Fetcher, PullPolicy};

pub fn run(globals: &mut Globals, args: &[String]) -> Result<i32> {
    let parsed = apps::parse(AppsCommand::Fetch, args).context("unable to parse arguments")?;
    globals.merge(&parsed)?;
    if parsed.wants_help() {
        println!("Usage: rkt fetch [--signature=FILE] [--full] [--pull-policy=new|update|never] IMAGE_URL...");
        return Ok(0);
    }
    let policy = pull_policy(&parsed, PullPolicy::Update)?;
    if parsed.apps.is_empty() {
        bail!("must provide at least one image");
    }
    let store = globals.open_store()?;
    let fetcher = Fetcher {
        store: &store,
        globals,
        policy,
    };
    let full = parsed.bool("full");
    for app in &parsed.apps {
        let key = fetcher.fetch(&app.image, app.get("signature"))?;
        if full {
            println!("{key}");
        } else {
            println!("{}", key.short());
        }
    }
    Ok(0)
}

/// `--pull-policy`, with the deprecated `--store-only`/`--no-store` spellings.
pub fn pull_policy(parsed: &apps::ParsedApps, default: PullPolicy) -> Result<PullPolicy> {
    let store_only = parsed.bool("store-only");
    let no_store = parsed.bool("no-store");
    if parsed.get("store-only").is_some() {
        eprintln!("Flag --store-only has been deprecated, please use --pull-policy=never");
    }
    if parsed.get("no-store").is_some() {
        eprintln!("Flag --no-store has been deprecated, please use --pull-policy=update");
    }
    if store_only && no_store {
        bail!("both --store-only and --no-store specified");
    }
    if store_only {
        return Ok(PullPolicy::Never);
    }
    if no_store {
        return Ok(PullPolicy::Update);
    }
    match parsed.get("pull-policy") {
        Some(p) => PullPolicy::parse(p),
        None => Ok(default),
    }
}
