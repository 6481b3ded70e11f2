//! `rkt export [--app=NAME] [--overwrite] UUID OUT.aci`: an exited pod's app as an image.
use std::fs::File;
use std::path::Path;

use aci::archive::{AciBuilder, Compression};
use anyhow::{bail, Context, Result};

use crate::cli::ExportArgs;
use crate::contract::{STAGE1_ROOTFS, STAGE2_DIR};
use crate::globals::Globals;
use crate::output::Log;
use crate::pod::Pods;

pub fn run(globals: &Globals, args: &ExportArgs, log: &Log) -> Result<i32> {
    let out = &args.output;
    if out.extension().and_then(|e| e.to_str()) != Some("aci") {
        bail!("extension must be .aci (given {})", out.display());
    }
    let pod = Pods::new(&globals.dir)
        .find(&args.uuid)
        .context("problem retrieving pod")?;
    if !pod.state().is_exited() {
        bail!("pod is not exited. Only exited pods can be exported");
    }
    let manifest = pod.manifest().context("cannot read pod manifest")?;
    let app = match &args.app {
        Some(a) => {
            if !manifest.apps.iter().any(|x| &x.name == a) {
                bail!("unable to find app: app {a} is not present in pod");
            }
            a.clone()
        }
        None => match manifest.apps.len() {
            0 => bail!("unable to find app: pod contains zero apps"),
            1 => manifest.apps[0].name.clone(),
            _ => {
                log.print("pod contains multiple apps:");
                for a in &manifest.apps {
                    log.print(format!("\t{}", a.name));
                }
                bail!("specify app using \"rkt export --app= ...\"");
            }
        },
    };
    let rootfs = pod
        .path()
        .join(STAGE1_ROOTFS)
        .join(STAGE2_DIR)
        .join(&app)
        .join("rootfs");
    if !rootfs.join("..").exists()
        || std::fs::read_dir(&rootfs)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    {
        bail!("the root filesystem of app {app} is no longer available (was the pod garbage collected?)");
    }
    if out.symlink_metadata().is_ok() && !args.overwrite.unwrap_or(false) {
        bail!("error building aci: target file exists (try --overwrite)");
    }
    let image = pod
        .app_image_manifest(&app)
        .context("cannot read the app's image manifest")?;
    let tmp = out.with_extension("aci.tmp");
    let result = build(&tmp, &image, &rootfs);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).with_context(|| format!("cannot create {}", out.display()))?;
    Ok(0)
}

fn build(path: &Path, image: &aci::schema::ImageManifest, rootfs: &Path) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut builder =
        AciBuilder::new(file, Compression::Gzip, image).context("error building aci")?;
    builder
        .add_tree(rootfs, "/")
        .context("error building aci")?;
    let file = builder.finish().context("error building aci")?;
    file.sync_all().context("error building aci")?;
    Ok(())
}
