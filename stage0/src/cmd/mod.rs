//! One module per subcommand: orchestration only.
pub mod cat_manifest;
pub mod completion;
pub mod config;
pub mod enter;
pub mod export;
pub mod fetch;
pub mod gc;
pub mod image;
pub mod list;
pub mod rm;
pub mod run;
pub mod run_prepared;
pub mod status;
pub mod stop;
pub mod trust;
pub mod version;

use anyhow::Result;

use crate::cli::{Command, ImageCommand};
use crate::globals::Globals;
use crate::output::Log;

/// Runs a parsed command; the returned code becomes the exit status. An image refused by a
/// limit names the flag that raises it.
pub fn dispatch(command: &Command, globals: &Globals, log: &Log) -> Result<i32> {
    run(command, globals, log).map_err(|e| crate::image::limits::name_the_flag(e, &globals.limits))
}

fn run(command: &Command, globals: &Globals, log: &Log) -> Result<i32> {
    match command {
        Command::Version => version::run(),
        Command::Completion(a) => completion::run(a),
        Command::Trust(a) => trust::run(globals, a),
        Command::Config(a) => config::run(globals, a),
        Command::MetadataService(a) => crate::mds::serve(a.listen_port),
        Command::Fetch(req) => fetch::run(globals, req),
        Command::Run(req) => run::run(globals, req, log),
        Command::Prepare(req) => run::prepare_pod(globals, req, log),
        Command::RunPrepared(a) => run_prepared::run(globals, a, log),
        Command::List(a) => list::run(globals, a),
        Command::Status(a) => status::run(globals, a, log),
        Command::Enter(a) => enter::run(globals, a, log),
        Command::Stop(a) => stop::run(globals, a, log),
        Command::Rm(a) => rm::run(globals, a, log),
        Command::Gc(a) => gc::run(globals, a, log),
        Command::CatManifest(a) => cat_manifest::run(globals, a),
        Command::Export(a) => export::run(globals, a, log),
        Command::Image(i) => match i {
            ImageCommand::List(a) => image::list(globals, a),
            ImageCommand::Rm(a) => image::rm(globals, &a.images, log),
            ImageCommand::Gc(a) => image::gc(globals, a, log),
            ImageCommand::Export(a) => image::export(globals, a),
            ImageCommand::Extract(a) => image::extract(globals, a, false, log),
            ImageCommand::Render(a) => image::extract(globals, a, true, log),
            ImageCommand::CatManifest(a) => image::cat_manifest(globals, a),
            ImageCommand::Verify(a) => image::verify(globals, &a.images, log),
            ImageCommand::Fetch(_) => unreachable!("bug: image fetch is parsed as fetch"),
        },
    }
}
