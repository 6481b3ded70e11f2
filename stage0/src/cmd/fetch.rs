//! `rkt fetch IMAGE...`: imports images and prints their IDs.
use anyhow::{bail, Result};

use crate::cli::requests::FetchRequest;
use crate::globals::Globals;
use crate::image::{Fetcher, PullPolicy};

pub fn run(globals: &Globals, req: &FetchRequest) -> Result<i32> {
    let policy = req.pull.resolve(PullPolicy::Update)?;
    if req.images.is_empty() {
        bail!("must provide at least one image");
    }
    let store = globals.open_store()?;
    let fetcher = Fetcher {
        store: &store,
        globals,
        policy,
    };
    for image in &req.images {
        let key = fetcher.fetch(&image.image, image.signature.as_deref())?;
        if req.full {
            println!("{key}");
        } else {
            println!("{}", key.short());
        }
    }
    Ok(0)
}
