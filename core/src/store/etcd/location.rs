//! `etcd://` and `etcds://` locations: parsing, and what they configure.
//!
//! ```text
//! etcd://[user@]host:port[,host:port…]/key/path[?timeout=SECONDS]
//! etcds://[user@]host:port[,host:port…]/key/path?ca=FILE[&cert=FILE&key=FILE][&timeout=SECONDS]
//! ```
//!
//! A password never comes from the location: `user:password@` (or a
//! `password=` parameter) is refused, and the password of `user` is read
//! from [`PASSWORD_ENV`](super::PASSWORD_ENV). Error messages show the
//! location with any user part and the query replaced by `…`, so a password
//! typed into a location by mistake is never echoed.

use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use super::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, PASSWORD_ENV};
use crate::error::{truncate_for_message, Error, Result};

/// The longest `timeout=` a location may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// What an etcd location configures, with its files read.
pub(super) struct Config {
    /// The location as given (it holds no secret: passwords are refused).
    pub(super) location: String,
    /// `host:port` of each member, in the order given.
    pub(super) endpoints: Vec<String>,
    /// Whether to speak TLS (`etcds://`).
    pub(super) tls: Option<Tls>,
    /// The etcd key the keychain lives at (the location's path).
    pub(super) key: Vec<u8>,
    /// User name and password, when the location names a user.
    pub(super) user: Option<(String, Zeroizing<String>)>,
    /// Bound on establishing a connection to one member.
    pub(super) connect_timeout: Duration,
    /// Bound on one store call (all its attempts together).
    pub(super) request_timeout: Duration,
}

/// The TLS material of an `etcds://` location.
pub(super) struct Tls {
    /// PEM CA certificate(s) that verify the members.
    pub(super) ca_pem: Vec<u8>,
    /// PEM client certificate chain and private key, for mutual TLS.
    pub(super) identity: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl Config {
    /// The URL of endpoint `i` as the gRPC client wants it.
    pub(super) fn endpoint_url(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.endpoints[i])
    }

    /// The location for messages: without its query, bounded.
    pub(super) fn shown(&self) -> String {
        let base = self.location.split('?').next().unwrap_or_default();
        truncate_for_message(base, 200)
    }

    /// The key as text, for messages.
    pub(super) fn key_for_message(&self) -> String {
        truncate_for_message(&String::from_utf8_lossy(&self.key), 120)
    }
}

/// The location with what could hold a secret (a user part, the query)
/// replaced by `…`, cut to a bounded length: what error messages show.
pub(super) fn redacted(text: &str) -> String {
    let mut shown = String::with_capacity(text.len().min(256));
    let (scheme, rest) = match text.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("", text),
    };
    if !scheme.is_empty() {
        shown.push_str(scheme);
        shown.push_str("://");
    }
    // Everything up to the last '@' may be (part of) a password, even when
    // the password itself holds '/', '?' or '@'.
    let rest = match rest.rfind('@') {
        Some(at) => {
            shown.push_str("…@");
            &rest[at + 1..]
        }
        None => rest,
    };
    match rest.split_once('?') {
        Some((before, _)) => {
            shown.push_str(before);
            shown.push_str("?…");
        }
        None => shown.push_str(rest),
    }
    truncate_for_message(&shown, 200)
}

/// Parses `text` (an `etcd://` or `etcds://` URL); `password` gives the
/// value of [`PASSWORD_ENV`], asked only if the location names a user.
/// Reads the TLS files it names.
pub(super) fn parse(
    text: &str,
    password: impl FnOnce() -> Option<Zeroizing<String>>,
) -> Result<Config> {
    let bad = |what: &str| {
        Error::invalid(format!(
            "invalid etcd location {:?}: {what}",
            redacted(text)
        ))
    };
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| bad("expected etcd://host:port/key or etcds://…"))?;
    let tls = match scheme {
        "etcd" => false,
        "etcds" => true,
        _ => return Err(bad("the scheme must be etcd or etcds")),
    };

    // Authority: up to the first '/'. Checked for a password before
    // anything else is looked at.
    let (authority, path_and_query) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !authority.contains('@')
        && rest.contains('@')
        && !authority.split(',').all(|hp| host_port(hp).is_some())
    {
        // A '/' inside a user part ended the authority early: most likely
        // `user:password@` with a '/' in the password.
        return Err(password_refused(text));
    }
    let (user, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            if userinfo.contains(':') {
                return Err(password_refused(text));
            }
            let user = percent_decode(userinfo)
                .ok()
                .and_then(|u| String::from_utf8(u).ok())
                .filter(|u| !u.is_empty() && !u.chars().any(char::is_control))
                .ok_or_else(|| bad("the user name is empty or malformed"))?;
            (Some(user), hosts)
        }
        None => (None, authority),
    };

    let mut endpoints = Vec::new();
    for (i, hp) in hosts.split(',').enumerate() {
        endpoints.push(host_port(hp).ok_or_else(|| {
            bad(&format!(
                "member {} is not host:port (IPv6 as [addr]:port)",
                i + 1
            ))
        })?);
    }
    if endpoints.len() > 64 {
        return Err(bad("more than 64 members"));
    }

    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    if path.len() <= 1 {
        return Err(bad(
            "needs a key path after the members (etcd://host:port/keystrata/keychain)",
        ));
    }
    let key = percent_decode(path).map_err(|()| bad("the key path has a malformed %-escape"))?;

    let mut ca = None;
    let mut cert = None;
    let mut key_file = None;
    let mut timeout = None;
    for param in query.into_iter().flat_map(|q| q.split('&')) {
        if param.is_empty() {
            continue;
        }
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        let slot = match name {
            "ca" => &mut ca,
            "cert" => &mut cert,
            "key" => &mut key_file,
            "timeout" => &mut timeout,
            "password" | "pass" | "passwd" | "pwd" | "token" => return Err(password_refused(text)),
            other => {
                return Err(bad(&format!(
                    "unknown parameter {:?} (known: ca, cert, key, timeout)",
                    truncate_for_message(other, 32)
                )))
            }
        };
        if slot.is_some() {
            return Err(bad(&format!("parameter {name} is given twice")));
        }
        let value = percent_decode(value)
            .ok()
            .and_then(|v| String::from_utf8(v).ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad(&format!("parameter {name} needs a value")))?;
        *slot = Some(value);
    }

    let (connect_timeout, request_timeout) = match timeout {
        None => (DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT),
        Some(t) => {
            let secs: f64 = t
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| bad("timeout must be a positive number of seconds"))?;
            let d = Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| *d <= MAX_TIMEOUT && !d.is_zero())
                .ok_or_else(|| {
                    bad(&format!(
                        "timeout must be more than 0 and at most {} seconds",
                        MAX_TIMEOUT.as_secs()
                    ))
                })?;
            (d.min(DEFAULT_CONNECT_TIMEOUT), d)
        }
    };

    let tls = if tls {
        let ca = ca.ok_or_else(|| {
            bad("etcds:// needs ca=FILE, the CA certificate(s) that verify the members")
        })?;
        let identity = match (cert, key_file) {
            (Some(c), Some(k)) => Some((
                read_file(&c, "client certificate")?,
                Zeroizing::new(read_file(&k, "client key")?),
            )),
            (None, None) => None,
            _ => return Err(bad("cert= and key= go together (mutual TLS)")),
        };
        Some(Tls {
            ca_pem: read_file(&ca, "CA certificate")?,
            identity,
        })
    } else {
        if ca.is_some() || cert.is_some() || key_file.is_some() {
            return Err(bad("ca=, cert= and key= need etcds:// (TLS)"));
        }
        None
    };

    let user = match user {
        None => None,
        Some(u) => {
            let p = password().filter(|p| !p.is_empty()).ok_or_else(|| {
                Error::invalid(format!(
                    "the etcd location {:?} names user {:?}: set its password in {PASSWORD_ENV}",
                    redacted(text),
                    truncate_for_message(&u, 64)
                ))
            })?;
            Some((u, p))
        }
    };

    Ok(Config {
        location: text.to_owned(),
        endpoints,
        tls,
        key,
        user,
        connect_timeout,
        request_timeout,
    })
}

fn password_refused(text: &str) -> Error {
    Error::invalid(format!(
        "invalid etcd location {:?}: a password in the location is refused \
         (it would show in process lists and logs); name only the user \
         (etcd://user@host:port/key) and set the password in {PASSWORD_ENV}",
        redacted(text)
    ))
}

/// `host:port` checked: a DNS name or IPv4 address, or `[IPv6]`, and a
/// port in 1..=65535.
fn host_port(hp: &str) -> Option<String> {
    let (host, port) = if let Some(v6) = hp.strip_prefix('[') {
        let (addr, port) = v6.split_once("]:")?;
        addr.parse::<std::net::Ipv6Addr>().ok()?;
        (hp.get(..addr.len() + 2)?, port)
    } else {
        let (host, port) = hp.rsplit_once(':')?;
        let ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !ok {
            return None;
        }
        (host, port)
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some(format!("{host}:{port}"))
}

fn percent_decode(s: &str) -> std::result::Result<Vec<u8>, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(())?;
            let hex = std::str::from_utf8(hex).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn read_file(path: &str, what: &str) -> Result<Vec<u8>> {
    let p = PathBuf::from(path);
    std::fs::read(&p).map_err(|e| Error::io(format!("reading the etcd {what} {}", p.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn pw(p: &str) -> impl FnOnce() -> Option<Zeroizing<String>> {
        let p = p.to_owned();
        move || Some(Zeroizing::new(p))
    }

    fn none() -> Option<Zeroizing<String>> {
        None
    }

    fn err(text: &str) -> Error {
        match parse(text, pw("hunter2")) {
            Ok(_) => panic!("{text} parsed"),
            Err(e) => e,
        }
    }

    #[test]
    fn members_key_and_defaults() {
        let c = parse(
            "etcd://127.0.0.1:2379,db.example:2380,[::1]:23/keystrata/kc",
            none,
        )
        .unwrap();
        assert_eq!(
            c.endpoints,
            ["127.0.0.1:2379", "db.example:2380", "[::1]:23"]
        );
        assert_eq!(c.key, b"/keystrata/kc");
        assert!(c.tls.is_none() && c.user.is_none());
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(c.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(c.endpoint_url(2), "http://[::1]:23");
        assert_eq!(
            c.location,
            "etcd://127.0.0.1:2379,db.example:2380,[::1]:23/keystrata/kc"
        );
    }

    #[test]
    fn timeout_and_escapes() {
        let c = parse("etcd://h:1/a%20b?timeout=0.5", none).unwrap();
        assert_eq!(c.key, b"/a b");
        assert_eq!(c.request_timeout, Duration::from_millis(500));
        assert_eq!(c.connect_timeout, Duration::from_millis(500));
        let c = parse("etcd://h:1/k?timeout=30", none).unwrap();
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        for t in ["0", "-1", "nan", "inf", "601", "x", ""] {
            assert_eq!(
                err(&format!("etcd://h:1/k?timeout={t}")).kind(),
                ErrorKind::InvalidInput,
                "{t}"
            );
        }
    }

    #[test]
    fn a_user_needs_the_password_from_the_environment() {
        let c = parse("etcd://alice@h:1/k", pw("s3cret")).unwrap();
        let (u, p) = c.user.as_ref().unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("alice", "s3cret"));
        for e in [
            parse("etcd://alice@h:1/k", none).err().unwrap(),
            parse("etcd://alice@h:1/k", pw("")).err().unwrap(),
        ] {
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.message().contains(PASSWORD_ENV), "{e}");
        }
        // Without a user the variable is not even read.
        let c = parse("etcd://h:1/k", || panic!("read the password")).unwrap();
        assert!(c.user.is_none());
    }

    #[test]
    fn a_password_in_the_location_is_refused_and_never_echoed() {
        for text in [
            "etcd://alice:hunter2@h:1/k",
            "etcds://alice:hunter2@h:1/k?ca=/x",
            "etcd://alice:hun/ter2@h:1/k",
            "etcd://alice:hun?ter2@h:1/k",
            "etcd://alice:hun@ter2@h:1/k",
            "etcd://:hunter2@h:1/k",
            "etcd://h:1/k?password=hunter2",
            "etcd://h:1/k?token=hunter2",
        ] {
            let e = err(text);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{text}");
            assert!(e.message().contains(PASSWORD_ENV), "{text}: {e}");
            assert!(!e.to_string().contains("hunter2"), "{text}: {e}");
            assert!(!e.to_string().contains("ter2"), "{text}: {e}");
        }
    }

    #[test]
    fn malformed_locations_are_invalid_input_with_a_bounded_echo() {
        for text in [
            "etcd:/h:1/k",
            "http://h:1/k",
            "etcd://h/k",
            "etcd://h:0/k",
            "etcd://h:65536/k",
            "etcd://h:x/k",
            "etcd://:1/k",
            "etcd://h:1",
            "etcd://h:1/",
            "etcd://h:1,/k",
            "etcd://h h:1/k",
            "etcd://[::1:1/k",
            "etcd://[zz]:1/k",
            "etcd://@h:1/k",
            "etcd://h:1/%zz",
            "etcd://h:1/k?ca=/x",
            "etcd://h:1/k?bogus=1",
            "etcd://h:1/k?timeout=1&timeout=2",
            "etcds://h:1/k",
            "etcds://h:1/k?ca=/x&cert=/y",
        ] {
            let e = err(text);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{text}: {e}");
        }
        let long = format!("etcd://h:1/k?{}=1", "p".repeat(10_000));
        assert!(err(&long).message().len() < 600);
        let long = format!("etcd://{}/k", "h".repeat(10_000));
        assert!(err(&long).message().len() < 600);
    }

    #[test]
    fn tls_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let write = |n: &str, b: &[u8]| {
            let p = dir.path().join(n);
            std::fs::write(&p, b).unwrap();
            p.display().to_string()
        };
        let ca = write("ca.pem", b"CA");
        let cert = write("c.pem", b"CERT");
        let key = write("c.key", b"KEY");
        let c = parse(
            &format!("etcds://h:1/k?ca={ca}&cert={cert}&key={key}"),
            none,
        )
        .unwrap();
        let tls = c.tls.as_ref().unwrap();
        assert_eq!(tls.ca_pem, b"CA");
        let (cc, kk) = tls.identity.as_ref().unwrap();
        assert_eq!((cc.as_slice(), kk.as_slice()), (&b"CERT"[..], &b"KEY"[..]));
        assert_eq!(c.endpoint_url(0), "https://h:1");
        let c = parse(&format!("etcds://h:1/k?ca={ca}"), none).unwrap();
        assert!(c.tls.unwrap().identity.is_none());
        let e = parse(&format!("etcds://h:1/k?ca={ca}.missing"), none)
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Io);
    }

    #[test]
    fn an_at_sign_in_the_key_path_is_no_password() {
        let c = parse("etcd://h:1/team@prod/kc", none).unwrap();
        assert_eq!(c.key, b"/team@prod/kc");
    }

    #[test]
    fn redaction_hides_user_parts_and_queries() {
        assert_eq!(redacted("etcd://u:p@h:1/k?ca=x"), "etcd://…@h:1/k?…");
        assert_eq!(redacted("etcd://h:1/k"), "etcd://h:1/k");
    }
}
