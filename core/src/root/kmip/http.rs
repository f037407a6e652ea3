//! The least HTTP/1.1 a KMIP client needs to POST JSON TTLV to a server's
//! HTTPS API (Cosmian KMS's `/kmip/2_1`) over its own TLS connections.
//!
//! One request at a time per connection, keep-alive by default (HTTP/1.1),
//! responses framed by `Content-Length` or `chunked`, or by the end of the
//! connection. Everything read is bounded: the status line and headers by
//! [`MAX_HEAD_LEN`], the body by the caller's limit; the caller bounds the
//! time. Malformed or oversized responses are `InvalidData` I/O errors,
//! whose messages quote at most [`MAX_QUOTE`](super::json::MAX_QUOTE)
//! characters of what the server sent.

use std::io;

use zeroize::Zeroizing;

use super::json::quote;

/// The largest status line plus headers accepted, in bytes.
pub const MAX_HEAD_LEN: usize = 16 * 1024;

/// The request line and headers of a POST of `len` bytes of JSON to `path`
/// on `host:port`.
pub fn post_head(host: &str, port: u16, path: &str, len: usize) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
}

/// A response: its status code and body, and whether the connection may
/// carry another request.
pub struct Response {
    /// The status code (200 for a KMIP response, failed or not).
    pub status: u16,
    /// The body, wiped on drop (it may hold plaintext).
    pub body: Zeroizing<Vec<u8>>,
    /// Whether the server keeps the connection open for another request.
    pub keep_alive: bool,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Buffered reading over `read` (which reads some bytes, within the
/// caller's deadline, and returns 0 at the end of the stream).
struct Reader<F> {
    read: F,
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    eof: bool,
}

impl<F: FnMut(&mut [u8]) -> io::Result<usize>> Reader<F> {
    /// Reads more into the buffer; false at the end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = Zeroizing::new([0u8; 8192]);
        let n = (self.read)(&mut chunk[..])?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// One line ending in CRLF (without it), of at most `*budget` bytes,
    /// which it lowers.
    fn line(&mut self, budget: &mut usize) -> io::Result<String> {
        loop {
            if let Some(i) = self.pending().windows(2).position(|w| w == b"\r\n") {
                if i > *budget {
                    break;
                }
                let line = String::from_utf8(self.pending()[..i].to_vec())
                    .map_err(|_| invalid("HTTP response head is not UTF-8"))?;
                self.pos += i + 2;
                *budget -= i + 2;
                return Ok(line);
            }
            if self.pending().len() > *budget {
                break;
            }
            if !self.fill()? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Err(invalid(format!(
            "HTTP response head is longer than {MAX_HEAD_LEN} bytes"
        )))
    }

    /// Exactly `n` bytes appended to `out`.
    fn take(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
        while self.pending().len() < n {
            if !self.fill()? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        out.extend_from_slice(&self.pending()[..n]);
        self.pos += n;
        Ok(())
    }
}

/// Reads one response with a body of at most `max_body` bytes.
pub fn read_response(
    read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    max_body: usize,
) -> io::Result<Response> {
    let mut r = Reader {
        read,
        buf: Zeroizing::new(Vec::new()),
        pos: 0,
        eof: false,
    };
    let mut budget = MAX_HEAD_LEN;
    let status_line = r.line(&mut budget)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status = parts
        .next()
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..600).contains(s));
    let (http11, status) = match (version, status) {
        ("HTTP/1.1", Some(s)) => (true, s),
        ("HTTP/1.0", Some(s)) => (false, s),
        _ => {
            return Err(invalid(format!(
                "not an HTTP/1.x response: {:?}",
                quote(&status_line)
            )))
        }
    };
    if status < 200 {
        // No Expect: 100-continue was sent, and no upgrade asked for.
        return Err(invalid(format!("unexpected HTTP status {status}")));
    }
    let mut length = None;
    let mut chunked = false;
    let mut keep_alive = http11;
    loop {
        let line = r.line(&mut budget)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("malformed HTTP header {:?}", quote(&line))))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| invalid(format!("bad Content-Length {:?}", quote(value))))?;
                if length.is_some_and(|l| l != n) {
                    return Err(invalid("two different Content-Length headers"));
                }
                length = Some(n);
            }
            "transfer-encoding" => {
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(invalid(format!(
                        "unsupported Transfer-Encoding {:?}",
                        quote(value)
                    )));
                }
                chunked = true;
            }
            "connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                        keep_alive = true;
                    }
                }
            }
            _ => {}
        }
    }
    let too_large = || {
        invalid(format!(
            "HTTP response body is larger than {max_body} bytes"
        ))
    };
    let mut body = Zeroizing::new(Vec::new());
    if chunked {
        loop {
            let mut line_budget = 1024;
            let line = r.line(&mut line_budget)?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .ok()
                .filter(|_| !size.is_empty() && size.len() <= 8)
                .ok_or_else(|| invalid(format!("bad chunk size {:?}", quote(&line))))?;
            if size == 0 {
                // Trailers, then the empty line.
                while !r.line(&mut budget)?.is_empty() {}
                break;
            }
            if body.len() + size > max_body {
                return Err(too_large());
            }
            r.take(size, &mut body)?;
            if !r.line(&mut line_budget)?.is_empty() {
                return Err(invalid("a chunk does not end where its size says"));
            }
        }
    } else if let Some(n) = length {
        if n > max_body {
            return Err(too_large());
        }
        r.take(n, &mut body)?;
    } else {
        // Framed by the end of the connection.
        keep_alive = false;
        loop {
            body.extend_from_slice(r.pending());
            r.pos = r.buf.len();
            if body.len() > max_body {
                return Err(too_large());
            }
            if !r.fill()? {
                break;
            }
        }
    }
    // Bytes after the response: the connection is out of step.
    if !r.pending().is_empty() {
        keep_alive = false;
    }
    Ok(Response {
        status,
        body,
        keep_alive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `input` in pieces of `step` bytes.
    fn parse(input: &[u8], step: usize, max: usize) -> io::Result<Response> {
        let mut at = 0;
        read_response(
            |buf| {
                let n = step.min(buf.len()).min(input.len() - at);
                buf[..n].copy_from_slice(&input[at..at + n]);
                at += n;
                Ok(n)
            },
            max,
        )
    }

    #[test]
    fn content_length_chunked_and_close() {
        for step in [1, 3, 8192] {
            let r = parse(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nContent-Type: application/json\r\n\r\nhello",
                step,
                100,
            )
            .unwrap();
            assert_eq!(
                (r.status, &r.body[..], r.keep_alive),
                (200, &b"hello"[..], true)
            );
            let r = parse(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\nT: 1\r\n\r\n",
                step,
                100,
            )
            .unwrap();
            assert_eq!((&r.body[..], r.keep_alive), (&b"hello"[..], true));
            let r = parse(
                b"HTTP/1.1 422 Unprocessable\r\n\r\nInvalid Request",
                step,
                100,
            )
            .unwrap();
            assert_eq!(
                (r.status, &r.body[..], r.keep_alive),
                (422, &b"Invalid Request"[..], false)
            );
            let r = parse(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                step,
                100,
            )
            .unwrap();
            assert!(!r.keep_alive && r.body.is_empty());
            let r = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", step, 100).unwrap();
            assert!(!r.keep_alive);
        }
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", 100, 100).unwrap();
        assert!(!r.keep_alive, "extra bytes make the connection unusable");
    }

    #[test]
    fn hostile_responses_are_refused() {
        let huge_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD_LEN));
        let cases: Vec<&[u8]> = vec![
            b"",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFF\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n60\r\n",
            huge_head.as_bytes(),
        ];
        for input in cases {
            let e = parse(input, 7, 100).err();
            assert!(e.is_some(), "{:?}", String::from_utf8_lossy(input));
        }
        // A body that grows past the limit, with no framing.
        let mut endless = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        endless.extend(std::iter::repeat_n(b'x', 1000));
        assert!(parse(&endless, 64, 100).is_err());
        // Chunks that add up past the limit.
        let mut chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..20 {
            chunks.extend_from_slice(b"10\r\n0123456789abcdef\r\n");
        }
        assert!(parse(&chunks, 64, 100).is_err());
        // Quoting is bounded.
        let e = parse(format!("{}\r\n\r\n", "x".repeat(5000)).as_bytes(), 512, 100)
            .err()
            .unwrap();
        assert!(e.to_string().len() < 600, "{e}");
    }

    #[test]
    fn the_head_names_host_and_length() {
        assert_eq!(
            post_head("::1", 9998, "/kmip/2_1", 12),
            "POST /kmip/2_1 HTTP/1.1\r\nHost: [::1]:9998\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\nContent-Length: 12\r\n\r\n"
        );
    }
}
