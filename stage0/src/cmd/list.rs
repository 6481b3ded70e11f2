//! `rkt list`: one row per app, pod columns on the first row of each pod.
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::cli::ListArgs;
use crate::globals::Globals;
use crate::pod::info::v1_pod;
use crate::pod::{Pod, PodState, Pods, StateDir};
use crate::tabwriter::TabWriter;
use crate::{humanize, json, timefmt};

pub fn run(globals: &Globals, args: &ListArgs) -> Result<i32> {
    let format = json::Format::parse(args.format.as_deref())?;
    let full = args.full.unwrap_or(false);
    let pods: Vec<Pod> = Pods::new(&globals.dir)
        .all()
        .context("failed to get pod handles")?
        .into_iter()
        .filter(|p| !matches!(p.state_dir(), StateDir::Embryo | StateDir::Garbage))
        .collect();
    if format != json::Format::Tabbed {
        // As rkt, pods without a creation time (still preparing, aborted) cannot be converted.
        let v1: Vec<_> = pods
            .iter()
            .filter(|p| p.created().is_some())
            .map(v1_pod)
            .collect();
        println!("{}", json::render(&v1, format));
        return Ok(0);
    }
    let mut tw = TabWriter::new();
    if !args.no_legend.unwrap_or(false) {
        if full {
            tw.row([
                "UUID",
                "APP",
                "IMAGE NAME",
                "IMAGE ID",
                "STATE",
                "CREATED",
                "STARTED",
                "NETWORKS",
            ]);
        } else {
            tw.row([
                "UUID",
                "APP",
                "IMAGE NAME",
                "STATE",
                "CREATED",
                "STARTED",
                "NETWORKS",
            ]);
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let time = |t: Option<i64>, zero_empty: bool| match t {
        Some(n) if full => timefmt::go_time(n),
        Some(n) => humanize::relative_time(n.div_euclid(1_000_000_000), now),
        None if zero_empty => String::new(),
        None if full => "0001-01-01 00:00:00 +0000 UTC".to_string(),
        None => "a long while ago".to_string(),
    };
    for pod in &pods {
        let uuid = if full {
            pod.uuid.to_string()
        } else {
            pod.uuid.to_string()[..8].to_string()
        };
        let state = pod.state().as_str().to_string();
        let created = time(pod.created(), false);
        let started = if matches!(pod.state(), PodState::Running) || pod.state().is_exited() {
            time(pod.started(), true)
        } else {
            String::new()
        };
        let networks = crate::pod::info::networks_text(&pod.networks());
        let apps: Vec<(String, String, String)> = match pod.manifest() {
            Some(m) if !m.apps.is_empty() => m
                .apps
                .iter()
                .map(|a| {
                    let image = pod
                        .app_image_manifest(&a.name)
                        .map(|im| match im.label("version") {
                            Some(v) => format!("{}:{v}", im.name),
                            None => im.name.clone(),
                        })
                        .unwrap_or_else(|| "--".into());
                    let id = a.image.id.chars().take(19).collect();
                    (a.name.clone(), image, id)
                })
                .collect(),
            _ => vec![("-".into(), "-".into(), "-".into())],
        };
        for (i, (app, image, id)) in apps.into_iter().enumerate() {
            let first = i == 0;
            let pod_cell = |s: &str| if first { s.to_string() } else { String::new() };
            let mut row = vec![pod_cell(&uuid), app, image];
            if full {
                row.push(id);
            }
            row.extend([
                pod_cell(&state),
                pod_cell(&created),
                pod_cell(&started),
                pod_cell(&networks),
            ]);
            tw.row(row);
        }
    }
    print!("{}", super::image::nonempty(tw.render()));
    Ok(0)
}
