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

/// Serialises one value (Go's escapes and tab indentation: `aci::go::to_json`).
pub fn render_value<T: Serialize + ?Sized>(value: &T, format: Format) -> String {
    let bytes = aci::go::to_json(value, format == Format::JsonPretty);
    String::from_utf8(bytes).expect("bug: serde_json writes UTF-8")
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
