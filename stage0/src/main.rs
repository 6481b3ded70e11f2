//! `rkt`: stage0. Parses the command line, runs the subcommand, reports errors once and sets
//! the exit status (254 for rkt's own failures; `run` passes the pod's status through).
mod cli;
mod cmd;
mod config;
mod contract;
mod globals;
mod humanize;
mod image;
mod json;
mod mds;
mod outfile;
mod output;
mod pod;
mod stage1;
mod sys;
mod tabwriter;
mod timefmt;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::cli::ParseError;
use crate::globals::Globals;
use crate::output::{Log, EXIT_FAILURE};

fn main() {
    // A closed stdout (`rkt list | head -1`) ends rkt quietly, as it does a Go program,
    // instead of a panic in `println!`.
    sys::default_sigpipe();
    let invocation = match cli::parse(std::env::args_os().collect()) {
        Ok(invocation) => invocation,
        Err(ParseError::Clap(err)) => std::process::exit(report_usage_error(err)),
        Err(ParseError::Help(text)) => {
            print!("{text}");
            std::process::exit(0);
        }
        Err(ParseError::Apps { command, error }) => {
            let context = match command {
                cli::apps::AppsCommand::Fetch => "unable to parse arguments",
                _ => "error parsing app image arguments",
            };
            Log::new(command.name(), false).error(&error.context(context));
            std::process::exit(EXIT_FAILURE);
        }
    };
    let command = &invocation.command;
    let log = Log::new(command.prefix(), invocation.globals.debug.unwrap_or(false));
    // As rkt: before any argument of the command is looked at.
    if command.requires_root() && sys::euid() != 0 {
        log.print("cannot run as unprivileged user");
        std::process::exit(EXIT_FAILURE);
    }
    let globals = match Globals::from_args(&invocation.globals) {
        Ok(g) => g,
        Err(e) => {
            log.error(&e);
            std::process::exit(EXIT_FAILURE);
        }
    };
    let code = match cmd::dispatch(command, &globals, &log) {
        Ok(code) => code,
        Err(e) => {
            log.error(&e);
            output::exit_code_of(&e)
        }
    };
    std::process::exit(code);
}

/// Reports a command-line error the way rkt (cobra/pflag) does and returns the exit status.
fn report_usage_error(err: clap::Error) -> i32 {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            print!("{err}");
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            // As rkt's root command: the help, and exit 2. `rkt image` alone is a group whose
            // help is all there is to show: exit 0.
            let words: Vec<String> = std::env::args()
                .skip(1)
                .filter(|a| !a.starts_with('-'))
                .collect();
            let mut tree = cli::command_tree();
            if words.first().map(String::as_str) == Some("image") {
                if let Some(image) = tree.find_subcommand_mut("image") {
                    print!("{}", image.render_help());
                }
                return 0;
            }
            eprintln!("rkt: missing command");
            print!("{}", tree.render_help());
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
            // pflag's wording: `invalid argument "x" for "--flag" flag: ...`.
            let flag = arg.split([' ', '=', '[', '<']).next().unwrap_or(&arg);
            eprintln!("Error: invalid argument {value:?} for \"{flag}\" flag: {why}");
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
