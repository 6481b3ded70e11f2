//! `actool`: build, inspect and validate ACI files.
//!
//! ```text
//! actool build [--compression none|gzip|bzip2|xz|zstd] [--overwrite] DIR OUT.aci
//! actool cat-manifest [--pretty-print] FILE.aci
//! actool validate FILE.aci
//! actool extract [--rootfs-only] FILE.aci DIR
//! ```
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use aci::archive::{read_aci, AciBuilder, Compression, ReadOptions};
use aci::schema::ImageManifest;

const USAGE: &str = "usage:
  actool build [--compression none|gzip|bzip2|xz|zstd] [--overwrite] DIR OUT.aci
  actool cat-manifest [--pretty-print] FILE.aci
  actool validate FILE.aci
  actool extract [--rootfs-only] FILE.aci DIR";

/// An error message plus the chain of causes, printed on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn build(args: &[String]) -> Result<(), String> {
    let mut compression = Compression::Gzip;
    let mut overwrite = false;
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--overwrite" => overwrite = true,
            "--compression" => {
                let v = it.next().ok_or("--compression needs a value")?;
                compression = Compression::from_name(v)
                    .ok_or_else(|| format!("unknown compression {v:?}"))?;
            }
            s if s.starts_with("--compression=") => {
                let v = &s["--compression=".len()..];
                compression = Compression::from_name(v)
                    .ok_or_else(|| format!("unknown compression {v:?}"))?;
            }
            s if s.starts_with("--") => return Err(format!("unknown flag {s}\n{USAGE}")),
            _ => positional.push(arg.as_str()),
        }
    }
    let [dir, out] = positional[..] else {
        return Err(format!("build needs DIR and OUT.aci\n{USAGE}"));
    };
    let dir = Path::new(dir);
    let manifest_path = dir.join("manifest");
    let manifest = fs::read(&manifest_path)
        .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let rootfs = dir.join("rootfs");
    if !rootfs.is_dir() {
        return Err(format!("{} is not a directory", rootfs.display()));
    }
    let mut opts = OpenOptions::new();
    opts.write(true);
    if overwrite {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let file = opts.open(out).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => format!("{out} already exists (use --overwrite)"),
        _ => format!("cannot create {out}: {e}"),
    })?;
    let mut builder = AciBuilder::with_manifest_bytes(file, compression, &manifest)
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    builder
        .add_tree(&rootfs, "")
        .and_then(|()| builder.finish())
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot write {out}: {e}"))
}

fn read(path: &str) -> Result<aci::archive::AciSummary, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    read_aci(BufReader::new(file), &ReadOptions::default())
        .map_err(|e| format!("{path}: {}", chain(&e)))
}

fn cat_manifest(args: &[String]) -> Result<(), String> {
    let pretty = args.iter().any(|a| a == "--pretty-print");
    let files: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [path] = files[..] else {
        return Err(format!("cat-manifest needs one FILE.aci\n{USAGE}"));
    };
    let summary = read(path)?;
    let mut out = if pretty {
        ImageManifest::to_json_pretty(&summary.manifest)
    } else {
        summary.manifest_bytes
    };
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    io::stdout()
        .write_all(&out)
        .map_err(|e| format!("cannot write output: {e}"))
}

fn validate(args: &[String]) -> Result<(), String> {
    let [path] = args else {
        return Err(format!("validate needs one FILE.aci\n{USAGE}"));
    };
    let summary = read(path)?;
    println!("{}", summary.id);
    Ok(())
}

fn extract(args: &[String]) -> Result<(), String> {
    let rootfs_only = args.iter().any(|a| a == "--rootfs-only");
    let rest: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [path, dir] = rest[..] else {
        return Err(format!("extract needs FILE.aci and DIR\n{USAGE}"));
    };
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
    let file = File::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
    let opts = ReadOptions {
        extract_to: Some(Path::new(dir)),
        rootfs_only,
        ..ReadOptions::default()
    };
    let summary = read_aci(file, &opts).map_err(|e| format!("{path}: {}", chain(&e)))?;
    println!("{}", summary.id);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build(&args[1..]),
        Some("cat-manifest") => cat_manifest(&args[1..]),
        Some("validate") => validate(&args[1..]),
        Some("extract") => extract(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("actool: {msg}");
            ExitCode::FAILURE
        }
    }
}
