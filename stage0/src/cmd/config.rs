//! `rkt config`: the merged configuration as JSON (docs/cli.md, "rkt config").
use anyhow::Result;

use crate::cli::ConfigArgs;
use crate::globals::Globals;
use crate::json::{render_value, Format};

pub fn run(globals: &Globals, args: &ConfigArgs) -> Result<i32> {
    let value = globals.config()?.to_json();
    let format = if args.pretty_print.unwrap_or(true) {
        Format::JsonPretty
    } else {
        Format::Json
    };
    let text = render_value(&value, format);
    println!("{text}");
    Ok(0)
}
