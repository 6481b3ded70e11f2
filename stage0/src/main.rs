//! `rkt`: stage0. Parses the command line, runs the subcommand, reports errors once and sets
//! the exit status (254 for rkt's own failures; `run` passes the pod's status through).
mod cli;
mod cmd;
mod contract;
mod globals;
mod humanize;
mod image;
mod json;
mod outfile;
mod output;
mod pod;
mod stage1;
mod sys;
mod tabwriter;
mod timefmt;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

use crate::cli::Cli;
use crate::globals::Globals;
use crate::output::{Log, EXIT_FAILURE};

fn main() {
    let args = flags_after_subcommand(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => std::process::exit(report_usage_error(err)),
    };
    let prefix = cli.command.prefix();
    let log = Log::new(prefix, cli.global.debug.unwrap_or(false));
    let mut globals = match Globals::from_args(&cli.global) {
        Ok(g) => g,
        Err(e) => {
            log.error(&e);
            std::process::exit(EXIT_FAILURE);
        }
    };
    let code = match cmd::dispatch(&cli.command, &mut globals, &log) {
        Ok(code) => code,
        Err(e) => {
            log.set_debug(globals.debug);
            log.error(&e);
            output::exit_code_of(&e)
        }
    };
    std::process::exit(code);
}

/// Global flags whose value may follow as the next argument.
const GLOBAL_VALUE_FLAGS: [&str; 7] = [
    "--dir",
    "--insecure-options",
    "--system-config",
    "--local-config",
    "--user-config",
    "--image-size-limit",
    "--image-expansion-limit",
];

/// rkt (cobra) parses flags written before the subcommand with the subcommand's own flag
/// set, so `rkt --stage1-path=X run IMAGE` works: move those flags right after the command
/// path (`run`, or `image list`), where clap and rkt's image-list grammar expect them.
fn flags_after_subcommand(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut before = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        if arg == "--" || !arg.starts_with('-') {
            break;
        }
        before.push(args[i].clone());
        if GLOBAL_VALUE_FLAGS.contains(&arg.as_ref()) && i + 1 < args.len() {
            before.push(args[i + 1].clone());
            i += 1;
        }
        i += 1;
    }
    if before.is_empty() || i >= args.len() {
        return args;
    }
    // The command path: one word, or two for `image <sub>`.
    let mut path_end = i + 1;
    if args[i] == "image"
        && path_end < args.len()
        && !args[path_end].to_string_lossy().starts_with('-')
    {
        path_end += 1;
    }
    let mut out = vec![args[0].clone()];
    out.extend_from_slice(&args[i..path_end]);
    out.extend(before);
    out.extend_from_slice(&args[path_end..]);
    out
}

/// Reports a command-line error the way rkt (cobra/pflag) does and returns the exit status.
fn report_usage_error(err: clap::Error) -> i32 {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            print!("{err}");
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            eprintln!("rkt: missing command");
            print!("{}", err.render());
            2
        }
        ErrorKind::InvalidSubcommand => {
            let name = context(&err, ContextKind::InvalidSubcommand).unwrap_or_default();
            eprintln!("Error: unknown command {name:?} for \"rkt\"\nRun 'rkt --help' for usage.");
            EXIT_FAILURE
        }
        ErrorKind::UnknownArgument => {
            let arg = context(&err, ContextKind::InvalidArg).unwrap_or_default();
            let name = arg.split('=').next().unwrap_or(&arg).to_string();
            eprintln!("Error: unknown flag: {name}");
            EXIT_FAILURE
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let arg = context(&err, ContextKind::InvalidArg).unwrap_or_default();
            let value = context(&err, ContextKind::InvalidValue).unwrap_or_default();
            let why = std::error::Error::source(&err)
                .map(|s| s.to_string())
                .unwrap_or_else(|| first_line(&err));
            eprintln!(
                "Error: invalid argument {value:?} for {}: {why}",
                arg.split_whitespace().next().unwrap_or(&arg)
            );
            EXIT_FAILURE
        }
        _ => {
            eprintln!("Error: {}", first_line(&err));
            EXIT_FAILURE
        }
    }
}

fn context(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        other => Some(other.to_string()),
    }
}

/// clap's message without its `error: ` prefix and usage footer.
fn first_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let line = text.lines().next().unwrap_or("").to_string();
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

#[cfg(test)]
mod tests {
    use super::flags_after_subcommand;

    fn moved(args: &[&str]) -> Vec<String> {
        flags_after_subcommand(args.iter().map(Into::into).collect())
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn flags_before_the_subcommand_move_after_it() {
        assert_eq!(
            moved(&[
                "rkt",
                "--stage1-path=/s.aci",
                "--dir",
                "/d",
                "run",
                "img",
                "--exec=/x"
            ]),
            [
                "rkt",
                "run",
                "--stage1-path=/s.aci",
                "--dir",
                "/d",
                "img",
                "--exec=/x"
            ]
        );
        assert_eq!(
            moved(&["rkt", "--debug", "image", "list", "--full"]),
            ["rkt", "image", "list", "--debug", "--full"]
        );
        assert_eq!(
            moved(&["rkt", "--image-size-limit", "1G", "fetch", "img"]),
            ["rkt", "fetch", "--image-size-limit", "1G", "img"]
        );
        assert_eq!(
            moved(&[
                "rkt",
                "--image-expansion-limit",
                "9",
                "image",
                "render",
                "x"
            ]),
            [
                "rkt",
                "image",
                "render",
                "--image-expansion-limit",
                "9",
                "x"
            ]
        );
        assert_eq!(moved(&["rkt", "run", "img"]), ["rkt", "run", "img"]);
        assert_eq!(moved(&["rkt", "--help"]), ["rkt", "--help"]);
    }
}
