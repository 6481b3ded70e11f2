use super::*;

fn run(args: &[&str]) -> Result<Parsed<RunRequest>> {
    let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    parse_run(AppsCommand::Run, &v)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn seed_argument_example_binds_args_and_execs_to_their_images() {
    let p = run(&[
        "example.com/worker",
        "--exec",
        "/bin/ov",
        "--",
        "--loglevel",
        "verbose",
        "---",
        "example.com/syncer",
        "--exec",
        "/bin/syncer2",
        "--",
        "--interval",
        "30s",
    ])
    .unwrap();
    let apps = &p.request.pod.apps;
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0].exec.as_deref(), Some("/bin/ov"));
    assert_eq!(apps[0].args, ["--loglevel", "verbose"]);
    assert_eq!(apps[1].exec.as_deref(), Some("/bin/syncer2"));
    assert_eq!(apps[1].args, ["--interval", "30s"]);
}

#[test]
fn pod_and_global_flags_may_follow_images() {
    let p = run(&[
        "img",
        "--set-env=A=1",
        "--debug=false",
        "--memory=128M",
        "--net=host",
        "--dir=/d",
        "--insecure-options=image",
    ])
    .unwrap();
    assert_eq!(p.request.pod.set_env, ["A=1"]);
    assert_eq!(p.globals.debug, Some(false));
    assert_eq!(p.globals.dir.as_deref(), Some(std::path::Path::new("/d")));
    assert!(p.globals.insecure_options.unwrap().skip_image());
    assert_eq!(p.request.launch.net.as_deref(), Some("host"));
    assert_eq!(p.request.pod.apps[0].memory.as_deref(), Some("128M"));
}

#[test]
fn per_app_flags_before_any_image_are_rejected() {
    let e = run(&["--exec=/bin/sh", "img"]).unwrap_err().to_string();
    assert_eq!(e, "--exec must follow an image");
    let e = run(&["--user", "0", "img"]).unwrap_err().to_string();
    assert_eq!(e, "--user must follow an image");
}

#[test]
fn mount_before_images_is_pod_wide_and_targets_may_be_relative() {
    let p = run(&[
        "--volume",
        "logs,kind=host,source=/srv/logs",
        "--mount",
        "volume=logs,target=/var/log",
        "a",
        "b",
        "--mount",
        "volume=logs,target=opt/log",
    ])
    .unwrap();
    let pod = &p.request.pod;
    assert_eq!(pod.mounts.len(), 1);
    assert!(pod.apps[0].mounts.is_empty());
    assert_eq!(pod.apps[1].mounts[0].target, "opt/log");
    assert_eq!(pod.volumes, ["logs,kind=host,source=/srv/logs"]);
}

#[test]
fn double_dash_rules() {
    assert_eq!(
        run(&["--", "x"]).unwrap_err().to_string(),
        "an image is required before any app arguments"
    );
    assert_eq!(
        run(&["img", "--", "a", "---", "--", "b"])
            .unwrap_err()
            .to_string(),
        "only one set of app arguments allowed per image"
    );
    assert!(parse_fetch(&strings(&["img", "--", "a"])).is_err());
}

#[test]
fn bool_flags_follow_pflag() {
    assert!(
        run(&["--inherit-env", "img"])
            .unwrap()
            .request
            .pod
            .inherit_env
    );
    // A bare bool never takes the next word: "false" is an image here.
    let p = run(&["--inherit-env", "false"]).unwrap();
    assert_eq!(p.request.pod.apps[0].image, "false");
    assert!(
        !run(&["--no-overlay=false", "img"])
            .unwrap()
            .request
            .pod
            .no_overlay
    );
    assert!(run(&["--no-overlay=maybe", "img"]).is_err());
    // --net alone means default and never takes the next word.
    let p = run(&["--net", "img"]).unwrap();
    assert_eq!(p.request.launch.net.as_deref(), Some("default"));
    assert_eq!(p.request.pod.apps[0].image, "img");
}

#[test]
fn unknown_flags_and_command_specific_ones() {
    assert_eq!(
        run(&["--bogus", "img"]).err().unwrap().to_string(),
        "unknown flag: --bogus"
    );
    assert!(parse_run(AppsCommand::Prepare, &strings(&["--interactive", "img"])).is_err());
    let fetch = parse_fetch(&strings(&["--full", "x"])).unwrap();
    assert!(fetch.request.full);
    assert_eq!(fetch.request.images[0].image, "x");
}

#[test]
fn exec_twice_for_one_image_is_an_error() {
    assert_eq!(
        run(&["img", "--exec=/a", "--exec=/b"])
            .err()
            .unwrap()
            .to_string(),
        "--exec specified multiple times for the same image"
    );
}

#[test]
fn stage1_flags_are_mutually_exclusive() {
    let e = run(&["--stage1-path=/a", "--stage1-hash=sha512-ab", "img"])
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "flags --stage1-hash and --stage1-path are mutually exclusive"
    );
    let p = run(&["--stage1-path=/a", "img"]).unwrap();
    assert_eq!(
        p.request.pod.stage1.source(),
        Stage1Source::Path("/a".into())
    );
}

#[test]
fn help_is_a_flag_of_every_grammar_command() {
    assert!(run(&["--help"]).unwrap().help);
    assert!(run(&["-h"]).unwrap().help);
    assert!(parse_fetch(&strings(&["--help"])).unwrap().help);
}

/// Every flag of the table reaches a field: none is accepted and dropped.
#[test]
fn every_flag_in_the_table_is_applied() {
    for cmd in [AppsCommand::Run, AppsCommand::Prepare, AppsCommand::Fetch] {
        for def in flags_of(cmd) {
            let value = match def.flag {
                Flag::InsecureOptions => "image",
                Flag::ImageSizeLimit => "1G",
                Flag::ImageExpansionLimit => "10",
                Flag::Mount => "volume=v,target=/t",
                _ if def.kind == Kind::Bool => "true",
                _ => "x",
            };
            let args = strings(&["img", &format!("--{}={value}", def.name)]);
            let result = match cmd {
                AppsCommand::Fetch => parse_fetch(&args).map(|_| ()),
                _ => parse_run(cmd, &args).map(|_| ()),
            };
            if let Err(e) = result {
                let e = e.to_string();
                assert!(
                    !e.contains("bug:"),
                    "--{} for {}: {e}",
                    def.name,
                    cmd.name()
                );
                assert!(
                    e.contains("experimental app sandbox"),
                    "--{} for {} refused: {e}",
                    def.name,
                    cmd.name()
                );
            }
        }
    }
}

#[test]
fn mount_syntax_errors_name_the_problem() {
    assert!(parse_mount("volume=data,target=/x").is_ok());
    assert!(parse_mount("volume=data,target=x").is_ok());
    assert!(parse_mount("volume=Data,target=/x").is_err());
    assert!(parse_mount("volume=data").is_err());
    assert!(parse_mount("volume=data,target=/x,foo=bar")
        .unwrap_err()
        .to_string()
        .contains("foo"));
}
