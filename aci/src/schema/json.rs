//! JSON output shaped like Go's `encoding/json`, so that manifests written by us read the same as
//! rkt's: `<`, `>`, `&`, U+2028 and U+2029 inside strings are escaped as `\u003c` and so on, and
//! pretty output is indented with one tab per level (`json.MarshalIndent(v, "", "\t")`, what
//! `rkt image cat-manifest --pretty-print` prints).
use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

struct GoFormatter<F>(F);

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {
        $(
            fn $name<W: ?Sized + Write>(&mut self, writer: &mut W $(, $arg: $ty)*) -> io::Result<()> {
                self.0.$name(writer $(, $arg)*)
            }
        )*
    };
}

impl<F: Formatter> Formatter for GoFormatter<F> {
    delegate!(
        begin_array(),
        end_array(),
        begin_array_value(first: bool),
        end_array_value(),
        begin_object(),
        end_object(),
        begin_object_key(first: bool),
        end_object_key(),
        begin_object_value(),
        end_object_value(),
    );

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serialises a value as Go's `encoding/json` would. Values with string-keyed maps only (all
/// of ours) cannot fail.
pub fn to_vec<T: Serialize + ?Sized>(value: &T, pretty: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    let result = if pretty {
        let fmt = GoFormatter(PrettyFormatter::with_indent(b"\t"));
        value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))
    } else {
        let fmt = GoFormatter(CompactFormatter);
        value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))
    };
    result.expect("bug: values with string keys always serialise");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_style_escaping_and_tabs() {
        let v = json!({"a": ["<b>&\u{2028}"], "c": {}});
        assert_eq!(
            String::from_utf8(to_vec(&v, false)).unwrap(),
            r#"{"a":["\u003cb\u003e\u0026\u2028"],"c":{}}"#
        );
        assert_eq!(
            String::from_utf8(to_vec(&v, true)).unwrap(),
            "{\n\t\"a\": [\n\t\t\"\\u003cb\\u003e\\u0026\\u2028\"\n\t],\n\t\"c\": {}\n}"
        );
    }
}
