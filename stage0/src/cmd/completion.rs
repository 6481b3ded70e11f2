//! `rkt completion bash|zsh`: a completion script for the shell, on stdout.
use anyhow::Result;
use clap_complete::Shell;

use crate::cli::CompletionArgs;

pub fn run(args: &CompletionArgs) -> Result<i32> {
    let shell = match args.shell.as_str() {
        "zsh" => Shell::Zsh,
        _ => Shell::Bash,
    };
    let mut tree = crate::cli::command_tree();
    clap_complete::generate(shell, &mut tree, "rkt", &mut std::io::stdout());
    Ok(0)
}
