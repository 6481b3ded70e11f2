//! `rkt image ...`: list, rm, gc, export, extract, render, cat-manifest, verify.
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aci::schema::Label;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use store::{ImageInfo, ImageKey, Store, StoreError, TreeCheck};

use crate::cli::{
    ImageCatManifestArgs, ImageExportArgs, ImageExtractArgs, ImageGcArgs, ImageListArgs,
};
use crate::globals::Globals;
use crate::output::Log;
use crate::tabwriter::TabWriter;
use crate::{humanize, json, pod, timefmt};

/// Resolves an image argument of the image subcommands: an ID prefix, or
/// `name[:version][,label=value...]` looked up with exactly the given labels.
pub fn resolve(store: &Store, arg: &str) -> Result<ImageKey> {
    if store::is_image_hash(arg) || arg.starts_with("sha512-") {
        return store.resolve_id(arg).map_err(|e| match e {
            StoreError::ImageNotFound(_) => {
                anyhow!("no image IDs found for {arg:?}: see `rkt image list`")
            }
            other => other.into(),
        });
    }
    let (name, labels) = match crate::image::classify(arg)? {
        crate::image::ImageArg::Name { name, labels } => (name, labels),
        _ => bail!("cannot parse the image name {arg:?}"),
    };
    match store.find_by_name(&name, &labels)? {
        Some(info) => Ok(info.image_key()),
        None => bail!(
            "cannot find aci satisfying name: {name:?} and labels: {} in the local store",
            go_labels(&labels)
        ),
    }
}

/// Go's `%q` of a label slice: `[]`, `[{"version" "1.0"}]`.
fn go_labels(labels: &[Label]) -> String {
    let items: Vec<String> = labels
        .iter()
        .map(|l| format!("{{{:?} {:?}}}", l.name, l.value))
        .collect();
    format!("[{}]", items.join(" "))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Serialize)]
struct ImageListEntry {
    id: String,
    name: String,
    import_time: i64,
    last_used_time: i64,
    size: u64,
}

const LIST_FIELDS: [&str; 5] = ["id", "name", "size", "importtime", "lastused"];

fn option_list(value: &str, allowed: &[&str]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for raw in value.split(',') {
        let opt = raw.to_ascii_lowercase();
        if !allowed.contains(&opt.as_str()) {
            bail!("unknown option {opt:?}");
        }
        if out.contains(&opt) {
            bail!("duplicated option {opt:?}");
        }
        out.push(opt);
    }
    Ok(out)
}

pub fn list(globals: &Globals, args: &ImageListArgs) -> Result<i32> {
    let fields = option_list(
        args.fields
            .as_deref()
            .unwrap_or("id,name,size,importtime,lastused"),
        &LIST_FIELDS,
    )
    .context("invalid --fields")?;
    let sort = option_list(
        args.sort.as_deref().unwrap_or("importtime"),
        &["name", "importtime", "lastused", "size"],
    )
    .context("invalid --sort")?;
    let ascending = match args
        .order
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("asc") => true,
        Some("desc") => false,
        Some(_) => bail!("wrong sort order"),
    };
    let format = json::Format::parse(args.format.as_deref())?;
    let full = args.full.unwrap_or(false);
    let store = globals.open_store()?;
    let mut images = store.images().context("unable to get aci infos")?;
    let trees = store
        .tree_sizes()
        .context("unable to get tree store sizes")?;
    images.sort_by(|a, b| {
        let mut ord = std::cmp::Ordering::Equal;
        for f in &sort {
            ord = ord.then_with(|| match f.as_str() {
                "name" => a.name.cmp(&b.name),
                "lastused" => a.last_used.cmp(&b.last_used),
                // rkt sorts on the image's own size, without its trees.
                "size" => a.tar_size.cmp(&b.tar_size),
                _ => a.import_time.cmp(&b.import_time),
            });
        }
        if ascending {
            ord
        } else {
            ord.reverse()
        }
    });
    if format != json::Format::Tabbed {
        let entries: Vec<ImageListEntry> = images
            .iter()
            .map(|i| ImageListEntry {
                id: i.key.clone(),
                name: i.display_name(),
                import_time: i.import_time,
                last_used_time: i.last_used,
                size: i.listed_size(&trees),
            })
            .collect();
        println!("{}", json::render(&entries, format));
        return Ok(0);
    }
    let mut tw = TabWriter::new();
    if !args.no_legend.unwrap_or(false) {
        tw.row(fields.iter().map(|f| header(f)));
    }
    let now = now_secs();
    for image in &images {
        let size = image.listed_size(&trees);
        tw.row(fields.iter().map(|f| cell(image, size, f, full, now)));
    }
    print!("{}", nonempty(tw.render()));
    Ok(0)
}

/// rkt prints tables through a logger, so an empty one is still a newline.
pub fn nonempty(s: String) -> String {
    if s.is_empty() {
        "\n".into()
    } else {
        s
    }
}

fn header(field: &str) -> String {
    match field {
        "id" => "ID",
        "name" => "NAME",
        "size" => "SIZE",
        "importtime" => "IMPORT TIME",
        _ => "LAST USED",
    }
    .to_string()
}

fn cell(image: &ImageInfo, size: u64, field: &str, full: bool, now: i64) -> String {
    let time = |nanos: i64| {
        if full {
            timefmt::go_time(nanos)
        } else {
            humanize::relative_time(nanos.div_euclid(1_000_000_000), now)
        }
    };
    match field {
        "id" if full => image.key.clone(),
        "id" => image.image_key().list_form().to_string(),
        "name" => image.display_name(),
        "size" if full => size.to_string(),
        "size" => humanize::ibytes(size),
        "importtime" => time(image.import_time),
        _ => time(image.last_used),
    }
}

pub fn rm(globals: &Globals, images: &[String], log: &Log) -> Result<i32> {
    if images.is_empty() {
        bail!("must provide at least one image ID");
    }
    let store = globals.open_store()?;
    let mut keys: Vec<ImageKey> = Vec::new();
    for arg in images {
        match resolve(&store, arg) {
            Ok(k) if !keys.contains(&k) => keys.push(k),
            Ok(_) => {}
            Err(e) => log.error(&e),
        }
    }
    remove_images(globals, &store, &keys, log, false)
}

/// Removes images (and trees no pod uses any more), reporting like `rkt image rm`. With
/// `keep_running`, images of running pods are skipped (decided under the store lock).
fn remove_images(
    globals: &Globals,
    store: &Store,
    keys: &[ImageKey],
    log: &Log,
    keep_running: bool,
) -> Result<i32> {
    let _lock = store.lock_exclusive().context("cannot lock the store")?;
    // What a killed `image rm` had renamed away goes now.
    store.clean_stale_work()?;
    let used = pod::trees_in_use(&globals.dir)?;
    let running = if keep_running {
        pod::images_in_use(&globals.dir)?
    } else {
        Default::default()
    };
    let keys: Vec<ImageKey> = keys
        .iter()
        .filter(|k| !running.contains(*k))
        .cloned()
        .collect();
    let keys = keys.as_slice();
    let mut done = 0;
    let mut errors = 0;
    for key in keys {
        match store.remove_image(key) {
            Ok(()) => {
                done += 1;
                println!("successfully removed aci for image: {:?}", key.as_str());
            }
            Err(e) => {
                errors += 1;
                log.print(format!(
                    "error removing aci for image {:?} ({:?})",
                    key.as_str(),
                    e.to_string()
                ));
            }
        }
    }
    // Trees made of removed images are useless unless a pod still mounts them.
    for id in store.trees()? {
        if used.contains(&id) {
            continue;
        }
        let stale = match store.tree(&id)? {
            Some(tree) => tree.images.iter().any(|k| keys.contains(k)),
            None => true,
        };
        if stale {
            store.remove_tree(&id)?;
        }
    }
    if done > 0 {
        log.print(format!("{done} image(s) successfully removed"));
    }
    if errors > 0 {
        log.print(format!("{errors} image(s) cannot be removed"));
        log.print("error(s) found while removing images");
        return Ok(crate::output::EXIT_FAILURE);
    }
    Ok(0)
}

pub fn gc(globals: &Globals, args: &ImageGcArgs, log: &Log) -> Result<i32> {
    let grace = timefmt::parse_duration(&args.grace_period)
        .with_context(|| format!("invalid --grace-period {:?}", args.grace_period))?;
    let store = globals.open_store()?;
    {
        let _lock = store.lock_exclusive().context("cannot lock the store")?;
        store.clean_stale_work()?;
        store.clean_stale_locks()?;
        let used = pod::trees_in_use(&globals.dir)?;
        for id in store.trees()? {
            if used.contains(&id) {
                continue;
            }
            match store.remove_tree(&id) {
                Ok(()) => log.print(format!("removed treestore {:?}", id.as_str())),
                Err(e) => log.print(format!("error removing treestore {:?}: {e}", id.as_str())),
            }
        }
    }

    let now = timefmt::now_nanos();
    let mut images = store.images().context("failed to get aciinfos")?;
    images.sort_by_key(|i| i.last_used);
    let mut expired = Vec::new();
    for image in images {
        if Duration::from_nanos((now - image.last_used).max(0) as u64) <= grace {
            break;
        }
        expired.push(image.image_key());
    }
    if expired.is_empty() {
        return Ok(0);
    }
    remove_images(globals, &store, &expired, log, true)
}

pub fn export(globals: &Globals, args: &ImageExportArgs) -> Result<i32> {
    let store = globals.open_store()?;
    let key = resolve(&store, &args.image)?;
    if args.output.symlink_metadata().is_ok() && !args.overwrite.unwrap_or(false) {
        bail!("output ACI file exists (try --overwrite)");
    }
    let verify = !globals.insecure.skip_ondisk();
    let overwrite = args.overwrite.unwrap_or(false);
    crate::outfile::write_atomically(&args.output, overwrite, |f| {
        store
            .export(&key, f, verify)
            .map(|_| ())
            .context("error reading image")
    })
    .with_context(|| format!("unable to write output ACI file {}", args.output.display()))?;
    Ok(0)
}

/// `image extract` (the image alone) and `image render` (with its dependencies).
pub fn extract(globals: &Globals, args: &ImageExtractArgs, render: bool, log: &Log) -> Result<i32> {
    let store = globals.open_store()?;
    let key = resolve(&store, &args.image)?;
    let out = &args.output;
    if out.symlink_metadata().is_ok() {
        if !args.overwrite.unwrap_or(false) {
            bail!("output directory exists (try --overwrite)");
        }
        let abs = std::path::absolute(out).unwrap_or_else(|_| out.clone());
        if abs == Path::new("/") {
            bail!("this would delete your root filesystem. Refusing.");
        }
        remove_path(out).context("error removing existing output dir")?;
    }
    let rootfs_only = args.rootfs_only.unwrap_or(false);
    let verify = !globals.insecure.skip_ondisk();
    // Build next to the destination and rename, so a failure leaves no half directory.
    let staging = staging_dir(out)?;
    let result = (|| -> Result<()> {
        if render {
            let _lock = store.lock_shared()?;
            let check = if verify {
                TreeCheck::Full
            } else {
                TreeCheck::None
            };
            let tree = match store.render_tree(&key, check) {
                Ok(t) => t,
                Err(e) => return Err(e).context("error rendering ACI"),
            };
            if !rootfs_only {
                fs::write(staging.join("manifest"), store.manifest_bytes(&key)?)
                    .context("error writing image manifest")?;
            }
            let dest = if rootfs_only {
                staging.clone()
            } else {
                staging.join("rootfs")
            };
            crate::pod::copy::copy_tree(&tree.rootfs(), &dest)
                .context("error copying ACI rootfs")?;
        } else {
            let mut blob = store
                .open_blob(&key)
                .context("error reading ACI from the store")?;
            let opts = aci::archive::ReadOptions {
                extract_to: Some(&staging),
                rootfs_only,
                limits: store.limits(),
                ..Default::default()
            };
            aci::archive::read_aci(&mut blob, &opts).context("error extracting ACI")?;
            if verify {
                blob.finish()?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = remove_path(&staging);
        return Err(e);
    }
    fs::rename(&staging, out)
        .with_context(|| format!("error creating output directory {}", out.display()))?;
    log.debug(format!("{} extracted to {}", key, out.display()));
    Ok(0)
}

fn staging_dir(out: &Path) -> Result<std::path::PathBuf> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let staging = parent.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    fs::create_dir(&staging)
        .with_context(|| format!("error creating output directory {}", staging.display()))?;
    Ok(staging)
}

/// Removes a file, symlink or directory tree (of any depth, never following symlinks).
fn remove_path(p: &Path) -> std::io::Result<()> {
    aci::rootfs::remove_tree(p)
}

pub fn cat_manifest(globals: &Globals, args: &ImageCatManifestArgs) -> Result<i32> {
    let store = globals.open_store()?;
    let key = resolve(&store, &args.image)?;
    let manifest = store.manifest(&key).context("cannot get image manifest")?;
    crate::output::print_json(
        args.pretty_print.unwrap_or(true),
        || manifest.to_json_pretty(),
        || manifest.to_json(),
    )?;
    Ok(0)
}

pub fn verify(globals: &Globals, images: &[String], log: &Log) -> Result<i32> {
    if images.is_empty() {
        bail!("must provide at least one image ID");
    }
    let store = globals.open_store()?;
    for arg in images {
        let key = match resolve(&store, arg) {
            Ok(k) => k,
            Err(e) => {
                log.print(format!("unable to resolve store key for image {arg}: {e}"));
                return Ok(crate::output::EXIT_FAILURE);
            }
        };
        if let Err(e) = store.verify_blob(&key) {
            log.print(format!("image {arg} failed verification: {e}"));
            return Ok(crate::output::EXIT_FAILURE);
        }
        let order = store.dependency_order(&key)?;
        let id = store::TreeId::for_images(&order);
        if store.tree(&id)?.is_none() {
            println!("image {arg:?} not rendered; no verification needed");
            continue;
        }
        let _lock = store.lock_shared()?;
        match store.verify_tree_contents(&key) {
            Ok(true) => {}
            Ok(false) => println!(
                "tree cache verification failed for image {arg}: its files differ from the image;  rebuilt"
            ),
            Err(e) => {
                log.print(format!("unable to repair cache for image {arg}: {e}"));
                return Ok(crate::output::EXIT_FAILURE);
            }
        }
        println!(
            "successfully verified checksum for image: {arg:?} ({:?})",
            key.as_str()
        );
    }
    Ok(0)
}
