//! rkt stage1: one binary, several entrypoints (docs/stage-contract.md). The stage1 image names each
//! entrypoint in its manifest annotations; they are links to this binary, told apart by name.
mod args;
mod caps;
mod cgroup;
mod confine;
mod console;
mod contract;
mod docker_volumes;
mod enter;
mod facts;
mod gc;
mod handoff;
mod isolators;
mod net;
mod plan;
mod run;
mod seccomp;
mod setup;
mod stop;
mod sys;

use std::path::Path;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let entry = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    let rest = &argv[argv.len().min(1)..];
    let debug = rest.iter().any(|a| a == "--debug" || a == "--debug=true");
    let result = match entry.as_str() {
        "init" | "run" => args::RunArgs::parse(rest).and_then(|a| run::run(&a)),
        "enter" => args::EnterArgs::parse(rest).and_then(|a| enter::enter(&a)),
        "gc" => args::PodArgs::parse(rest).and_then(|a| gc::gc(&a)),
        "stop" => args::PodArgs::parse(rest).and_then(|a| stop::stop(&a)),
        handoff::CLEANUP_ENTRY => handoff::cleanup(rest),
        other => Err(anyhow::anyhow!(
            "unknown entrypoint {other:?}: call this binary as init, enter, gc or stop"
        )),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            if debug {
                eprintln!("stage1: {err}");
                for cause in err.chain().skip(1) {
                    eprintln!("  {cause}");
                }
            } else {
                // Rust's " (os error N)" suffix is noise for users.
                let chain: Vec<String> = err
                    .chain()
                    .map(|c| {
                        let s = c.to_string();
                        match s.rfind(" (os error ") {
                            Some(i) if s.ends_with(')') => s[..i].to_string(),
                            _ => s,
                        }
                    })
                    .collect();
                eprintln!("stage1: {}", chain.join(": "));
            }
            std::process::exit(254);
        }
    }
}
