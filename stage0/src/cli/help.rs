//! Help for the image-list commands (`run`, `prepare`, `fetch`), whose flags live in
//! [`apps::FLAGS`] rather than in clap, and the command tree completion scripts are made from.
use clap::{Arg, ArgAction, Command};

use super::apps::{self, AppsCommand, FlagDef, Kind};

const GLOBAL: &[&str] = &[
    "debug",
    "dir",
    "insecure-options",
    "system-config",
    "local-config",
    "user-config",
    "trust-keys-from-https",
    "image-size-limit",
    "image-expansion-limit",
    "help",
];

fn about(cmd: AppsCommand) -> &'static str {
    match cmd {
        AppsCommand::Run => "Run image(s) in a pod in rkt",
        AppsCommand::Prepare => "Prepare to run image(s) in a pod in rkt",
        AppsCommand::Fetch => "Fetch image(s) and store them in the local store",
    }
}

fn usage(cmd: AppsCommand) -> &'static str {
    match cmd {
        AppsCommand::Run => "rkt run [--volume=name,kind=host,...] [--mount volume=VOL,target=PATH] IMAGE [-- image-args...[---]]...",
        AppsCommand::Prepare => "rkt prepare [--volume=name,kind=host,...] [--quiet] IMAGE [-- image-args...[---]]...",
        AppsCommand::Fetch => "rkt fetch [--signature=FILE] [--full] [--pull-policy=new|update|never] IMAGE_URL...",
    }
}

fn arg(def: &FlagDef) -> Arg {
    let mut arg = Arg::new(def.name).long(def.name).help(def.help);
    arg = match def.kind {
        Kind::Bool => arg.action(ArgAction::SetTrue),
        Kind::Value => arg.value_name("VALUE").action(ArgAction::Append),
        Kind::OptionalValue(_) => arg.value_name("VALUE").num_args(0..=1).require_equals(true),
    };
    if let Some(default) = def.default {
        arg = arg.default_value(default);
    }
    arg
}

fn add_flags(mut command: Command, cmd: AppsCommand, with_globals: bool) -> Command {
    for def in apps::flags_of(cmd).filter(|d| !d.hidden) {
        let global = GLOBAL.contains(&def.name);
        if global && !with_globals {
            continue;
        }
        let mut a = arg(def);
        if global {
            a = a.help_heading("Global Flags");
        }
        command = command.arg(a);
    }
    command
}

/// `rkt run --help` and the like: one usage line, then every flag with what it does and its
/// default.
pub fn apps_help(cmd: AppsCommand) -> String {
    let images = Arg::new("IMAGE")
        .num_args(0..)
        .help("images to run, each followed by its flags and `-- ARGS... ---`");
    let mut command = add_flags(
        Command::new(cmd.name())
            .bin_name(format!("rkt {}", cmd.name()))
            .about(about(cmd))
            .override_usage(usage(cmd))
            .disable_help_flag(true)
            .arg(images),
        cmd,
        true,
    );
    command.render_help().to_string()
}

/// The command tree with the image-list commands' flags added (the globals come from the root).
pub fn with_apps_flags(root: Command) -> Command {
    root.mut_subcommand("run", |c| add_flags(c, AppsCommand::Run, false))
        .mut_subcommand("prepare", |c| add_flags(c, AppsCommand::Prepare, false))
        .mut_subcommand("fetch", |c| add_flags(c, AppsCommand::Fetch, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_help_has_one_usage_line_and_every_visible_flag_with_defaults() {
        let help = apps_help(AppsCommand::Run);
        assert_eq!(help.matches("Usage:").count(), 1, "{help}");
        for def in apps::flags_of(AppsCommand::Run).filter(|d| !d.hidden) {
            assert!(
                help.contains(&format!("--{}", def.name)),
                "--{} missing:\n{help}",
                def.name
            );
        }
        assert!(help.contains("[default: new]"), "{help}");
        assert!(!help.contains("--stdin"), "hidden flags stay hidden");
        assert!(apps_help(AppsCommand::Fetch).contains("--full"));
        assert!(!apps_help(AppsCommand::Prepare).contains("--interactive"));
    }

    #[test]
    fn the_command_tree_lists_run_flags_for_completion() {
        let tree = super::super::command_tree();
        let run = tree.find_subcommand("run").expect("run");
        assert!(run.get_arguments().any(|a| a.get_long() == Some("volume")));
        assert!(run.get_arguments().any(|a| a.get_long() == Some("exec")));
    }
}
