//! Just enough HTTP/1.1 for the metadata service: one request per connection, a bounded
//! header, a body only with `Content-Length` and bounded too, `Connection: close` replies.
//! Anything else is refused with a status, never a panic or an unbounded read.
use std::io::{self, Read, Write};

/// Longest request line plus headers accepted.
pub const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoding left to the router.
    pub path: String,
    pub query: String,
    pub body: Vec<u8>,
}

/// A reply: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

pub const TEXT: &str = "text/plain; charset=us-ascii";
pub const JSON: &str = "application/json";

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: TEXT,
            body: body.into().into_bytes(),
        }
    }

    pub fn json(body: Vec<u8>) -> Response {
        Response {
            status: 200,
            content_type: JSON,
            body,
        }
    }

    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            411 => "Length Required",
            413 => "Payload Too Large",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            _ => "Unknown",
        };
        let head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        w.write_all(head.as_bytes())?;
        w.write_all(&self.body)?;
        w.flush()
    }
}

/// Reads one request; `Err` is the reply that refuses it.
pub fn read_request(r: &mut impl Read, max_body: usize) -> Result<Request, Response> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(Response::text(431, "request header too large"));
        }
        match r.read(&mut chunk) {
            Ok(0) => return Err(Response::text(400, "incomplete request")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Response::text(408, "request timed out")),
        }
    };
    if head_end > MAX_HEAD {
        return Err(Response::text(431, "request header too large"));
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| Response::text(400, "request header is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::text(400, "malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(Response::text(400, "malformed request line"));
    }
    let mut length = 0usize;
    for header in lines {
        let Some((name, value)) = header.split_once(':') else {
            return Err(Response::text(400, "malformed header"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| Response::text(400, "bad Content-Length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::text(501, "chunked bodies are not supported"));
        }
    }
    if length > max_body {
        return Err(Response::text(
            413,
            format!("body larger than {max_body} bytes"),
        ));
    }
    let mut body = buf[head_end + 4..].to_vec();
    if body.len() > length {
        body.truncate(length);
    }
    while body.len() < length {
        let want = (length - body.len()).min(chunk.len());
        match r.read(&mut chunk[..want]) {
            Ok(0) => return Err(Response::text(400, "incomplete body")),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Response::text(408, "request timed out")),
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        body,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Percent-decoding (`+` as space, for forms); `None` for a bad escape or non-UTF-8.
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The value of `key` in an `application/x-www-form-urlencoded` string (a query or a body);
/// only when it appears exactly once, as Go's `FormValue` users here expect.
pub fn form_value(form: &str, key: &str) -> Option<String> {
    let mut found = None;
    for pair in form.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(k).as_deref() == Some(key) {
            if found.is_some() {
                return None;
            }
            found = Some(decode(v)?);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, max: usize) -> Result<Request, Response> {
        read_request(&mut raw.as_bytes(), max)
    }

    #[test]
    fn requests_are_parsed_and_bounded() {
        let r = parse(
            "PUT /pods/u?token=ab HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            10,
        )
        .unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_str()),
            ("PUT", "/pods/u", "token=ab")
        );
        assert_eq!(r.body, b"{}");
        assert_eq!(
            parse("GET / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10)
                .unwrap_err()
                .status,
            413
        );
        assert_eq!(parse("GET /\r\n\r\n", 10).unwrap_err().status, 400);
        assert_eq!(
            parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 10)
                .unwrap_err()
                .status,
            501
        );
        assert_eq!(
            parse("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 10)
                .unwrap_err()
                .status,
            400
        );
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(&huge, 10).unwrap_err().status, 431);
    }

    #[test]
    fn forms_decode_like_go() {
        assert_eq!(
            form_value("content=a%20b+c&x=1", "content").as_deref(),
            Some("a b c")
        );
        assert_eq!(form_value("content=1&content=2", "content"), None);
        assert_eq!(form_value("x=%zz", "x"), None);
        assert_eq!(form_value("y=1", "x"), None);
    }
}
