//! The metadata service's state and routes (docs/cli.md, "rkt metadata-service"): pods
//! registered over the root-only Unix socket, and the appc metadata endpoints apps reach over
//! TCP with their pod's token.
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha512;

use super::http::{form_value, Request, Response, JSON, TEXT};

/// One registered pod.
struct Pod {
    uuid: uuid::Uuid,
    token: String,
    manifest: Value,
    manifest_bytes: Vec<u8>,
    /// Image manifests by app name, as registered.
    apps: HashMap<String, (Value, Vec<u8>)>,
    /// The pod's directory, for the addresses it may call from (`net-info.json`).
    dir: Option<PathBuf>,
}

/// Everything the service knows; lost on restart, as in rkt.
pub struct Service {
    pods: Mutex<Vec<Pod>>,
    hmac_key: [u8; 64],
}

/// How a request reached the service.
pub enum Peer {
    /// The registration socket (root only).
    Registrar,
    /// An app, from this address.
    App(IpAddr),
}

fn not_found(what: &str) -> Response {
    Response::text(404, format!("{what} not found"))
}

fn valid_ac_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._~/@".contains(&b))
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

fn valid_ac_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// `[{name, value}]` of an appc annotations list, later entries replacing earlier ones.
fn annotations(lists: &[&Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for list in lists {
        for a in list.as_array().into_iter().flatten() {
            let (Some(n), Some(v)) = (a["name"].as_str(), a["value"].as_str()) else {
                continue;
            };
            match out.iter_mut().find(|(k, _)| k == n) {
                Some(slot) => slot.1 = v.to_string(),
                None => out.push((n.to_string(), v.to_string())),
            }
        }
    }
    out
}

fn annotations_json(list: &[(String, String)]) -> Response {
    let values: Vec<Value> = list
        .iter()
        .map(|(n, v)| serde_json::json!({ "name": n, "value": v }))
        .collect();
    Response::json(serde_json::to_vec(&values).unwrap_or_default())
}

fn annotation(list: &[(String, String)], name: &str, what: &str) -> Response {
    if !valid_ac_identifier(name) {
        return Response::text(400, format!("{what} {name:?} is not a valid AC Identifier"));
    }
    match list.iter().find(|(k, _)| k == name) {
        Some((_, v)) => Response::text(200, v.clone()),
        None => Response::text(404, format!("{what} {name:?} not found")),
    }
}

impl Service {
    pub fn new(hmac_key: [u8; 64]) -> Service {
        Service {
            pods: Mutex::new(Vec::new()),
            hmac_key,
        }
    }

    pub fn handle(&self, peer: &Peer, req: &Request) -> Response {
        match peer {
            Peer::Registrar => self.registration(req),
            Peer::App(addr) => self.public(*addr, req),
        }
    }

    fn registration(&self, req: &Request) -> Response {
        let rest = req.path.strip_prefix("/pods/").unwrap_or("");
        let (uuid, app) = match rest.split_once('/') {
            Some((u, a)) => (u, Some(a)),
            None => (rest, None),
        };
        let Ok(uuid) = uuid::Uuid::parse_str(uuid) else {
            return Response::text(400, "UUID is missing or malformed");
        };
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        match (req.method.as_str(), app) {
            ("PUT", None) => {
                let Some(token) = form_value(&req.query, "token").filter(|t| !t.is_empty()) else {
                    return Response::text(400, "token missing");
                };
                let manifest: Value = match serde_json::from_slice(&req.body) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => return Response::text(400, "JSON-decoding failed"),
                };
                let dir = form_value(&req.query, "dir").map(PathBuf::from);
                pods.retain(|p| p.uuid != uuid && p.token != token);
                pods.push(Pod {
                    uuid,
                    token,
                    manifest,
                    manifest_bytes: req.body.clone(),
                    apps: HashMap::new(),
                    dir,
                });
                Response::text(200, "")
            }
            ("DELETE", None) => {
                let before = pods.len();
                pods.retain(|p| p.uuid != uuid);
                if pods.len() == before {
                    return not_found("pod");
                }
                Response::text(200, "")
            }
            ("PUT", Some(app)) if !app.is_empty() => {
                let manifest: Value = match serde_json::from_slice(&req.body) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => return Response::text(400, "JSON-decoding failed"),
                };
                let Some(pod) = pods.iter_mut().find(|p| p.uuid == uuid) else {
                    return Response::text(404, "Pod with given UUID not found");
                };
                pod.apps
                    .insert(app.to_string(), (manifest, req.body.clone()));
                Response::text(200, "")
            }
            ("PUT", Some(_)) => Response::text(400, "app missing"),
            _ => Response::text(405, "method not allowed"),
        }
    }

    /// The addresses `pod` may call from; `None` when it has no network of its own.
    fn pod_addresses(pod: &Pod) -> Option<Vec<IpAddr>> {
        let dir = pod.dir.as_ref()?;
        let text = std::fs::read(dir.join("net-info.json")).ok()?;
        let nets: Value = serde_json::from_slice(&text).ok()?;
        let ips: Vec<IpAddr> = nets
            .as_array()?
            .iter()
            .filter_map(|n| n["ip"].as_str()?.parse().ok())
            .collect();
        (!ips.is_empty()).then_some(ips)
    }

    fn sign(&self, uuid: &uuid::Uuid, content: &str) -> Vec<u8> {
        let mut mac =
            Hmac::<Sha512>::new_from_slice(&self.hmac_key).expect("bug: HMAC takes any key");
        mac.update(uuid.as_bytes());
        mac.update(content.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn public(&self, from: IpAddr, req: &Request) -> Response {
        let mut parts = req.path.trim_start_matches('/').splitn(2, '/');
        let token = parts.next().unwrap_or_default();
        let Some(rest) = parts.next().and_then(|r| r.strip_prefix("acMetadata/v1/")) else {
            return not_found("endpoint");
        };
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        let Some(pod) = pods.iter().find(|p| p.token == token) else {
            return Response::text(401, "pod not found");
        };
        // The token is the pod's identity; the address must be one of the pod's too, so a
        // token another pod learnt is worth nothing from there.
        if let Some(allowed) = Self::pod_addresses(pod) {
            if !allowed.contains(&from) {
                return Response::text(403, "request from an address outside the pod's networks");
            }
        }
        let post = |resp: Response| {
            if req.method == "POST" {
                resp
            } else {
                Response::text(405, "method not allowed")
            }
        };
        if rest == "pod/hmac/sign" {
            let body = String::from_utf8_lossy(&req.body);
            let Some(content) = form_value(&body, "content").filter(|c| !c.is_empty()) else {
                return post(Response::text(400, "content form value not found"));
            };
            let sig =
                base64::engine::general_purpose::STANDARD.encode(self.sign(&pod.uuid, &content));
            return post(Response::text(200, sig));
        }
        if rest == "pod/hmac/verify" {
            let body = String::from_utf8_lossy(&req.body);
            let uuid = form_value(&body, "uuid").and_then(|u| uuid::Uuid::parse_str(&u).ok());
            let Some(uuid) = uuid else {
                return post(Response::text(400, "uuid field missing or malformed"));
            };
            let Some(content) = form_value(&body, "content").filter(|c| !c.is_empty()) else {
                return post(Response::text(400, "content field missing"));
            };
            let sig = form_value(&body, "signature")
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
            let Some(sig) = sig else {
                return post(Response::text(400, "signature field missing or corrupt"));
            };
            let mut mac =
                Hmac::<Sha512>::new_from_slice(&self.hmac_key).expect("bug: HMAC takes any key");
            mac.update(uuid.as_bytes());
            mac.update(content.as_bytes());
            let ok = mac.verify_slice(&sig).is_ok();
            return post(Response::text(if ok { 200 } else { 403 }, ""));
        }
        if req.method != "GET" {
            return Response::text(405, "method not allowed");
        }
        let pod_annotations = || annotations(&[&pod.manifest["annotations"]]);
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            // As the manifest has it, `null` included: clients compare the two.
            ["pod", "annotations"] if pod.manifest["annotations"].is_null() => {
                Response::json(b"null".to_vec())
            }
            ["pod", "annotations"] => annotations_json(&pod_annotations()),
            ["pod", "annotations", name] => annotation(&pod_annotations(), name, "Pod annotation"),
            ["pod", "manifest"] => Response::json(pod.manifest_bytes.clone()),
            ["pod", "uuid"] => Response::text(200, pod.uuid.to_string()),
            ["apps", app, more @ ..] => {
                if !valid_ac_name(app) {
                    return Response::text(400, format!("App name {app:?} is not a valid AC Name"));
                }
                let Some((image, image_bytes)) = pod.apps.get(*app) else {
                    return not_found("app");
                };
                let pod_app = pod.manifest["apps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["name"].as_str() == Some(app));
                let merged = || {
                    let none = Value::Null;
                    let app_annotations = pod_app.map_or(&none, |a| &a["annotations"]);
                    annotations(&[&image["annotations"], app_annotations])
                };
                match more {
                    ["annotations"] => annotations_json(&merged()),
                    ["annotations", name] => annotation(&merged(), name, "App annotation"),
                    ["image", "manifest"] => Response {
                        status: 200,
                        content_type: JSON,
                        body: image_bytes.clone(),
                    },
                    ["image", "id"] => match pod_app.and_then(|a| a["image"]["id"].as_str()) {
                        Some(id) => Response {
                            status: 200,
                            content_type: TEXT,
                            body: id.as_bytes().to_vec(),
                        },
                        None => not_found("app image"),
                    },
                    _ => not_found("endpoint"),
                }
            }
            _ => not_found("endpoint"),
        }
    }
}

#[cfg(test)]
mod tests;
