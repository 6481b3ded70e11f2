//! How rkt reports: stderr lines prefixed with the command's name, errors as
//! `prefix: context: root cause` (or a tree with `--debug`), exit 254 for rkt's own failures.
use std::fmt::Display;

/// Exit code for rkt's own failures.
pub const EXIT_FAILURE: i32 = 254;

/// A failure that must end with a particular exit status (where rkt does not use 254).
#[derive(Debug)]
pub struct ExitStatus {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitStatus {}

/// The exit status for an error: its [`ExitStatus`] if it carries one, else 254.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<ExitStatus>())
        .map(|e| e.code)
        .unwrap_or(EXIT_FAILURE)
}

/// Prints a manifest on stdout, pretty or compact, with a final newline.
pub fn print_json(
    pretty: bool,
    pretty_json: impl FnOnce() -> Vec<u8>,
    json: impl FnOnce() -> Vec<u8>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let bytes = if pretty { pretty_json() } else { json() };
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// The stderr logger of one command.
#[derive(Debug, Clone)]
pub struct Log {
    prefix: String,
    debug: bool,
}

impl Log {
    pub fn new(prefix: &str, debug: bool) -> Log {
        Log {
            prefix: format!("{prefix}: "),
            debug,
        }
    }

    /// `prefix: msg`.
    pub fn print(&self, msg: impl Display) {
        let msg = msg.to_string();
        if msg.ends_with('\n') {
            eprint!("{}{msg}", self.prefix);
        } else {
            eprintln!("{}{msg}", self.prefix);
        }
    }

    /// Only with `--debug`.
    pub fn debug(&self, msg: impl Display) {
        if self.debug {
            self.print(msg);
        }
    }

    /// An error: its whole chain on one line, or with `--debug` as a tree.
    pub fn error(&self, err: &anyhow::Error) {
        eprintln!("{}{}", self.prefix, render_error(err, self.debug));
    }
}

/// Renders an error chain the way rkt does.
pub fn render_error(err: &anyhow::Error, debug: bool) -> String {
    let chain: Vec<String> = err
        .chain()
        .map(|c| without_os_error(&c.to_string()))
        .collect();
    if debug {
        let mut out = chain[0].clone();
        for (depth, cause) in chain.iter().skip(1).enumerate() {
            out.push('\n');
            out.push_str(&"  ".repeat(depth + 1));
            out.push_str("└─");
            out.push_str(cause);
        }
        return out;
    }
    // One line naming every step: rkt prints only the innermost cause, which often loses the
    // path or image the failure is about.
    chain.join(": ")
}

/// Rust appends " (os error N)" to system errors; rkt prints the message alone.
fn without_os_error(msg: &str) -> String {
    match msg.rfind(" (os error ") {
        Some(i) if msg.ends_with(')') => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn os_error_numbers_are_dropped() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let err = anyhow::Error::new(io).context("cannot open /x");
        assert_eq!(
            render_error(&err, false),
            "cannot open /x: No such file or directory"
        );
    }

    #[test]
    fn errors_show_outer_and_root_cause() {
        let err = Err::<(), _>(anyhow::anyhow!("no matches found for \"abc\""))
            .context("unable to resolve UUID")
            .context("problem retrieving pod")
            .unwrap_err();
        assert_eq!(
            render_error(&err, false),
            "problem retrieving pod: unable to resolve UUID: no matches found for \"abc\""
        );
        assert_eq!(
            render_error(&err, true),
            "problem retrieving pod\n  └─unable to resolve UUID\n    └─no matches found for \"abc\""
        );
    }
}
