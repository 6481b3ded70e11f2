//! appc meta discovery: for an image name, `GET https://<prefix>?ac-discovery=1` for each prefix
//! from the whole name up to its first component, reading the `ac-discovery` (image URL
//! templates) and `ac-discovery-pubkeys` (signing key URLs) meta tags of the first prefix that
//! has any.
use crate::http::{Client, Fetched, HttpError};

/// Discovery pages larger than this are refused.
const PAGE_LIMIT: u64 = 1 << 20;

/// What is being looked for: a name and its labels (`version`, `os`, `arch`, ...).
#[derive(Debug, Clone)]
pub struct DiscoveryApp {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

/// An image and its signature, as the templates made them.
#[derive(Debug, Clone, PartialEq)]
pub struct AciEndpoint {
    pub aci: String,
    pub asc: String,
}

/// A prefix that gave nothing, and why.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub prefix: String,
    pub error: String,
}

/// Endpoints of the first prefix that had any, with the prefixes tried before.
#[derive(Debug, Clone, Default)]
pub struct Discovered<T> {
    pub found: Vec<T>,
    pub attempts: Vec<Attempt>,
}

/// Image endpoints for `app` (empty `found` when no prefix has any).
pub fn discover_acis(client: &Client, app: &DiscoveryApp) -> Discovered<AciEndpoint> {
    discover(client, &app.name, |page, out: &mut Vec<AciEndpoint>| {
        for (prefix, template) in meta_pairs(page, "ac-discovery") {
            if !app.name.starts_with(&prefix) {
                continue;
            }
            let aci = render(&template, app, "aci");
            let asc = render(&template, app, "aci.asc");
            if let (Some(aci), Some(asc)) = (aci, asc) {
                out.push(AciEndpoint { aci, asc });
            }
        }
    })
}

/// Public key URLs for `name`.
pub fn discover_keys(client: &Client, name: &str) -> Discovered<String> {
    discover(client, name, |page, out: &mut Vec<String>| {
        for (prefix, url) in meta_pairs(page, "ac-discovery-pubkeys") {
            if name.starts_with(&prefix) {
                out.push(url);
            }
        }
    })
}

fn discover<T>(client: &Client, name: &str, extract: impl Fn(&str, &mut Vec<T>)) -> Discovered<T> {
    let mut result = Discovered {
        found: Vec::new(),
        attempts: Vec::new(),
    };
    let parts: Vec<&str> = name.split('/').collect();
    for end in (1..=parts.len()).rev() {
        let prefix = parts[..end].join("/");
        match fetch_page(client, &prefix) {
            Ok(page) => {
                extract(&page, &mut result.found);
                if !result.found.is_empty() {
                    return result;
                }
                result.attempts.push(Attempt {
                    prefix,
                    error: "no matching meta tags".into(),
                });
            }
            Err(e) => result.attempts.push(Attempt {
                prefix,
                error: e.to_string(),
            }),
        }
    }
    result
}

/// The discovery page of a prefix: HTTPS, then plain HTTP when the client allows it.
fn fetch_page(client: &Client, prefix: &str) -> Result<String, HttpError> {
    let mut schemes = vec!["https"];
    if client.options().allow_http {
        schemes.push("http");
    }
    let mut last = None;
    for scheme in schemes {
        let url = format!("{scheme}://{prefix}?ac-discovery=1");
        match client.get(&url, None) {
            Ok(Fetched::Body(d)) => {
                let bytes = d.read_limited(PAGE_LIMIT)?;
                return Ok(String::from_utf8_lossy(&bytes).into_owned());
            }
            Ok(_) => last = Some(HttpError::Status { code: 202 }),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("bug: at least one scheme is tried"))
}

/// `{name}`, `{<label>}` and `{ext}` substituted; `None` when a `{...}` is left.
fn render(template: &str, app: &DiscoveryApp, ext: &str) -> Option<String> {
    let mut out = template.replace("{name}", &app.name);
    for (k, v) in &app.labels {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out = out.replace("{ext}", ext);
    (!out.contains('{') && !out.contains('}')).then_some(out)
}

/// The `(first word, second word)` of the content of every `<meta name=NAME content=...>`.
fn meta_pairs(page: &str, name: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lower = page.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("<meta") {
        let start = from + pos;
        let Some(len) = page[start..].find('>') else {
            break;
        };
        let tag = &page[start..start + len];
        from = start + len;
        if attribute(tag, "name").as_deref() != Some(name) {
            continue;
        }
        let Some(content) = attribute(tag, "content") else {
            continue;
        };
        let mut words = content.split_whitespace();
        if let (Some(a), Some(b), None) = (words.next(), words.next(), words.next()) {
            out.push((a.to_string(), b.to_string()));
        }
    }
    out
}

/// The value of `attr` in a tag (quoted with `"` or `'`, or bare), HTML entities for `&`
/// decoded.
fn attribute(tag: &str, attr: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(attr) {
        let at = from + pos;
        from = at + attr.len();
        let before_ok = at > 0 && lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = tag[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value = rest[1..].trim_start();
        let raw = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or(""),
        };
        return Some(raw.replace("&amp;", "&"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> DiscoveryApp {
        DiscoveryApp {
            name: "example.com/app".into(),
            labels: vec![
                ("version".into(), "1.0".into()),
                ("os".into(), "linux".into()),
                ("arch".into(), "amd64".into()),
            ],
        }
    }

    #[test]
    fn templates_are_filled_and_incomplete_ones_dropped() {
        let t = "https://example.com/{name}-{version}-{os}-{arch}.{ext}";
        assert_eq!(
            render(t, &app(), "aci").unwrap(),
            "https://example.com/example.com/app-1.0-linux-amd64.aci"
        );
        assert_eq!(
            render(t, &app(), "aci.asc").unwrap(),
            "https://example.com/example.com/app-1.0-linux-amd64.aci.asc"
        );
        assert!(render("https://x/{name}-{channel}.{ext}", &app(), "aci").is_none());
    }

    #[test]
    fn meta_tags_are_read_in_any_quoting() {
        let page = r#"<html><head>
            <meta name="ac-discovery" content="example.com https://example.com/{name}.{ext}">
            <META NAME='ac-discovery-pubkeys' CONTENT='example.com https://example.com/key.gpg'/>
            <meta name="other" content="a b">
            </head></html>"#;
        assert_eq!(
            meta_pairs(page, "ac-discovery"),
            vec![(
                "example.com".into(),
                "https://example.com/{name}.{ext}".into()
            )]
        );
        assert_eq!(
            meta_pairs(page, "ac-discovery-pubkeys"),
            vec![("example.com".into(), "https://example.com/key.gpg".into())]
        );
    }
}
