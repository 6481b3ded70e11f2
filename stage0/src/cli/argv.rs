//! rkt (cobra) parses flags written before the subcommand with the subcommand's own flag set,
//! so `rkt --stage1-path=X run IMAGE` works. This moves those flags right after the command
//! path (`run`, or `image list`), where the one parser of that command reads them.
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

/// Moves the flags before the command path after it.
pub fn flags_after_subcommand(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
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
