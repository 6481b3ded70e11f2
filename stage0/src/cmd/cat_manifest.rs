//! `rkt cat-manifest [--pretty-print] UUID|--uuid-file`.

use anyhow::{Context, Result};

use crate::cli::CatManifestArgs;
use crate::globals::Globals;

pub fn run(globals: &Globals, args: &CatManifestArgs) -> Result<i32> {
    let pod = if args.uuid_file.is_some() {
        super::status::pod_from_args(globals, None, args.uuid_file.as_deref())?
    } else {
        super::status::pod_from_args(globals, args.uuid.as_deref(), None)?
    };
    let manifest = pod
        .manifest()
        .context("cannot read the pod manifest (is the pod prepared?)")?;
    crate::output::print_json(
        args.pretty_print.unwrap_or(true),
        || manifest.to_json_pretty(),
        || manifest.to_json(),
    )?;
    Ok(0)
}
