//! JSON output as Go's encoding/json writes it: HTML-safe escapes, tab indentation for
//! `json-pretty`, `null` for empty lists.
use anyhow::{bail, Result};
use serde::Serialize;

/// `--format` of list, status and image list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tabbed,
    Json,
    JsonPretty,
}

impl Format {
    pub fn parse(s: Option<&str>) -> Result<Format> {
        match s.unwrap_or("") {
            "" => Ok(Format::Tabbed),
            "json" => Ok(Format::Json),
            "json-pretty" => Ok(Format::JsonPretty),
            other => bail!("Invalid format option: {other}"),
        }
    }
}

/// Serialises a list; an empty one is `null` like a nil Go slice.
pub fn render<T: Serialize>(items: &[T], format: Format) -> String {
    if items.is_empty() {
        return "null".into();
    }
    render_value(&items, format)
}

/// Serialises one value.
pub fn render_value<T: Serialize + ?Sized>(value: &T, format: Format) -> String {
    let raw = if format == Format::JsonPretty {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        value
            .serialize(&mut ser)
            .expect("bug: output types always serialise");
        String::from_utf8(buf).expect("bug: serde_json writes UTF-8")
    } else {
        serde_json::to_string(value).expect("bug: output types always serialise")
    };
    go_escape(&raw)
}

/// Go escapes `<`, `>`, `&`, U+2028 and U+2029 everywhere in its output (they can only occur
/// inside strings).
fn go_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Item {
        name: String,
        size: u64,
    }

    #[test]
    fn empty_lists_are_null_and_html_is_escaped() {
        assert_eq!(render::<Item>(&[], Format::Json), "null");
        let items = [Item {
            name: "a<b>&".into(),
            size: 1,
        }];
        assert_eq!(
            render(&items, Format::Json),
            r#"[{"name":"a\u003cb\u003e\u0026","size":1}]"#
        );
        assert_eq!(
            render(&items, Format::JsonPretty),
            "[\n\t{\n\t\t\"name\": \"a\\u003cb\\u003e\\u0026\",\n\t\t\"size\": 1\n\t}\n]"
        );
    }
}
