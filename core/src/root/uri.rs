//! Roots named by a URI string: the forms the `--root` option of the
//! `keystrata` CLI takes, so a new root needs no per-language code. The
//! grammar, with examples, is in `docs/ROOTS.md`:
//!
//! ```text
//! age:FILE                                 an age identity file (age-keygen output)
//! age-recipient:age1…[,age1…]              encrypt-only: save, never load
//! passphrase:VAR | passphrase:env:VAR      scrypt passphrase from an environment variable
//! passphrase:file:PATH                     scrypt passphrase from a file (one trailing newline dropped)
//! pkcs11:token=T;object=K?module-path=M&pin-source=env:VAR|file:PATH[&x-create=true]
//! kmip://HOST[:PORT]?key-name=N|key-id=I&ca=F&cert=F&client-key=F
//!        [&version=1.4|2.0][&server-name=S][&timeout=SECS][&x-create=true]
//! aws-kms:KEY[?region=R][&endpoint-url=URL][&profile=P][&timeout=SECS]
//! ```
//!
//! Secrets never travel in the URI: a passphrase, a PIN or a private key
//! comes from an environment variable or a file the URI names. Errors are
//! `InvalidInput` (a malformed URI, a missing or unknown attribute, a secret
//! written inline), `Unsupported` (a scheme keystrata knows but this build
//! or release does not serve), or what opening the root returns. Messages
//! echo at most 64 characters of any part of the URI and never a value that
//! could be a secret.

use std::path::{Path, PathBuf};

use super::{AgeRoot, PassphraseRoot, Root};
use crate::error::{truncate_for_message, Error, Result};

/// How much of a URI part an error message may echo.
const ECHO: usize = 64;

/// Opens the root `uri` names. The forms (`docs/ROOTS.md` has the whole
/// grammar, with examples; secrets come from the environment or files,
/// never from the URI):
///
/// ```text
/// age:FILE                                 an age identity file (age-keygen output)
/// age-recipient:age1…[,age1…]              encrypt-only: save, never load
/// passphrase:VAR | passphrase:env:VAR      scrypt passphrase from an environment variable
/// passphrase:file:PATH                     scrypt passphrase from a file
/// pkcs11:token=T;object=K?module-path=M&pin-source=env:VAR|file:PATH[&x-create=true]
/// kmip://HOST[:PORT]?key-name=N|key-id=I&ca=F&cert=F&client-key=F[&version=2.0]…
/// aws-kms:KEY[?region=R][&endpoint-url=URL][&profile=P][&timeout=SECS]
/// ```
///
/// Errors: a malformed URI, an unknown scheme or attribute, or a secret
/// written inline: `InvalidInput`; a scheme this build does not serve:
/// `Unsupported`; an unreadable file: `Io`; otherwise what opening the root
/// returns.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("id.txt");
/// # let id = keystrata::AgeRoot::generate();
/// # use keystrata::root::ExposeSecret;
/// # std::fs::write(&path, id.insecure_identity_strings()[0].expose_secret())?;
/// use keystrata::{root, Keychain};
///
/// let root = root::from_uri(&format!("age:{}", path.display()))?;
/// let kc = Keychain::generate()?;
/// let saved = kc.save(&*root)?;
/// assert_eq!(Keychain::load(&saved, &*root)?.keys()?, kc.keys()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn from_uri(uri: &str) -> Result<Box<dyn Root>> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err(Error::invalid(format!(
            "a root URI starts with a scheme (age:, age-recipient:, passphrase:, pkcs11:, \
             kmip:, aws-kms:); got {:?}",
            truncate_for_message(uri, 16)
        )));
    };
    match scheme {
        "age" => Ok(Box::new(age(rest)?)),
        "age-recipient" => Ok(Box::new(age_recipient(rest)?)),
        "passphrase" => Ok(Box::new(passphrase(rest)?)),
        "pkcs11" => pkcs11(rest),
        "kmip" => kmip(rest),
        "aws-kms" => aws_kms(rest),
        other => Err(Error::invalid(format!(
            "unknown root scheme {:?} (expected age:, age-recipient:, passphrase:, pkcs11:, \
             kmip: or aws-kms:)",
            truncate_for_message(other, ECHO)
        ))),
    }
}

fn non_empty<'a>(what: &str, s: &'a str) -> Result<&'a str> {
    if s.is_empty() {
        Err(Error::invalid(format!("{what} is empty")))
    } else {
        Ok(s)
    }
}

fn read_secret_file(what: &str, path: &Path) -> Result<zeroize::Zeroizing<String>> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path).map_err(|e| Error::io(format!("reading {what} file"), e))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::invalid(format!("the {what} file is not valid UTF-8")))?;
    Ok(zeroize::Zeroizing::new(text.to_owned()))
}

fn read_env(what: &str, var: &str) -> Result<zeroize::Zeroizing<String>> {
    check_env_name(var)?;
    let shown = truncate_for_message(var, ECHO);
    match std::env::var(var) {
        Ok(v) => Ok(zeroize::Zeroizing::new(v)),
        Err(std::env::VarError::NotPresent) => Err(Error::invalid(format!(
            "environment variable {shown} ({what}) is not set"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::invalid(format!(
            "environment variable {shown} ({what}) is not valid UTF-8"
        ))),
    }
}

fn check_env_name(var: &str) -> Result<()> {
    let mut chars = var.chars();
    let ok = matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
            truncate_for_message(var, ECHO)
        )))
    }
}

/// `age:FILE`: the identities of an age identity file; the recipients are
/// derived from them.
fn age(path: &str) -> Result<AgeRoot> {
    let path = non_empty("the age identity file path (age:FILE)", path)?;
    let text = read_secret_file("age identity", Path::new(path))?;
    AgeRoot::new([text.as_str()], std::iter::empty::<&str>())
}

/// `age-recipient:age1…[,age1…]`: a root that can save but not load.
fn age_recipient(list: &str) -> Result<AgeRoot> {
    let list = non_empty("the recipient list (age-recipient:age1…)", list)?;
    AgeRoot::new(std::iter::empty::<&str>(), list.split(','))
}

/// `passphrase:VAR`, `passphrase:env:VAR` or `passphrase:file:PATH`.
fn passphrase(rest: &str) -> Result<PassphraseRoot> {
    let secret = if let Some(path) = rest.strip_prefix("file:") {
        let path = non_empty("the passphrase file path (passphrase:file:PATH)", path)?;
        let mut text = read_secret_file("passphrase", Path::new(path))?;
        let keep = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .map(str::len)
            .unwrap_or(text.len());
        text.truncate(keep);
        text
    } else {
        let var = rest.strip_prefix("env:").unwrap_or(rest);
        read_env("the passphrase", var)?
    };
    PassphraseRoot::new(secret.as_str())
}

/// Splits `rest` at the first `?` into the path part and the query
/// attributes (`name=value`, `&`-separated, values percent-decoded).
/// A repeated attribute is refused.
fn split_query<'a>(scheme: &str, rest: &'a str) -> Result<(&'a str, Vec<(String, String)>)> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let attrs = attributes(scheme, query, '&')?;
    Ok((path, attrs))
}

fn attributes(scheme: &str, text: &str, sep: char) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in text.split(sep).filter(|s| !s.is_empty()) {
        let Some((name, value)) = item.split_once('=') else {
            return Err(Error::invalid(format!(
                "{scheme}: attribute {:?} has no value (name=value)",
                truncate_for_message(item.split('=').next().unwrap_or(""), ECHO)
            )));
        };
        let name = pct_decode(scheme, name)?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(Error::invalid(format!(
                "{scheme}: attribute {:?} is given twice",
                truncate_for_message(&name, ECHO)
            )));
        }
        let value = pct_decode(scheme, value)?;
        out.push((name, value));
    }
    Ok(out)
}

/// RFC 3986 percent-decoding into UTF-8. Never echoes the value.
fn pct_decode(scheme: &str, s: &str) -> Result<String> {
    let bad = || Error::invalid(format!("{scheme}: a value has a malformed %-escape"));
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::invalid(format!("{scheme}: a value is not valid UTF-8")))
}

/// The attributes of one URI, taken one by one; whatever is left at the
/// end is an unknown attribute.
struct Attrs {
    scheme: &'static str,
    list: Vec<(String, String)>,
}

impl Attrs {
    fn take(&mut self, name: &str) -> Option<String> {
        let i = self.list.iter().position(|(n, _)| n == name)?;
        Some(self.list.remove(i).1)
    }

    fn require(&mut self, name: &str) -> Result<String> {
        let v = self.take(name).ok_or_else(|| {
            Error::invalid(format!("{}: the {name} attribute is required", self.scheme))
        })?;
        non_empty(&format!("{}: the {name} attribute", self.scheme), &v)?;
        Ok(v)
    }

    fn flag(&mut self, name: &str) -> Result<bool> {
        match self.take(name).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(Error::invalid(format!(
                "{}: {name} must be true or false, not {:?}",
                self.scheme,
                truncate_for_message(other, ECHO)
            ))),
        }
    }

    /// An attribute that is one of two words: `false` for `off` (also when
    /// absent), `true` for `on`.
    fn either(&mut self, name: &str, off: &str, on: &str) -> Result<bool> {
        match self.take(name) {
            None => Ok(false),
            Some(v) if v == off => Ok(false),
            Some(v) if v == on => Ok(true),
            Some(other) => Err(Error::invalid(format!(
                "{}: {name} must be {off} or {on}, not {:?}",
                self.scheme,
                truncate_for_message(&other, ECHO)
            ))),
        }
    }

    /// Refuses attributes that would put a secret in the URI, without
    /// echoing their values.
    fn refuse_inline_secret(&mut self, name: &str, instead: &str) -> Result<()> {
        if self.take(name).is_some() {
            return Err(Error::invalid(format!(
                "{}: {name} is refused: secrets never go in a root URI; use {instead}",
                self.scheme
            )));
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self.list.first() {
            None => Ok(()),
            Some((name, _)) => Err(Error::invalid(format!(
                "{}: unknown attribute {:?}",
                self.scheme,
                truncate_for_message(name, ECHO)
            ))),
        }
    }
}

#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
enum PinSource {
    Env(String),
    File(PathBuf),
}

#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
struct Pkcs11Uri {
    token: String,
    object: String,
    module: PathBuf,
    pin: PinSource,
    create: bool,
}

/// RFC 7512's `pkcs11:` URI, the subset a root needs: path attributes
/// `token`, `object` (the key's label) and optionally `type=secret-key`;
/// query attributes `module-path`, `pin-source` (`env:VAR` or
/// `file:PATH`, never `pin-value`) and `x-create`.
fn parse_pkcs11(rest: &str) -> Result<Pkcs11Uri> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path_attrs = attributes("pkcs11", path, ';')?;
    let mut query_attrs = attributes("pkcs11", query, '&')?;
    for (n, _) in &path_attrs {
        if query_attrs.iter().any(|(q, _)| q == n) {
            return Err(Error::invalid(format!(
                "pkcs11: attribute {:?} is given twice",
                truncate_for_message(n, ECHO)
            )));
        }
    }
    let mut list = path_attrs;
    list.append(&mut query_attrs);
    let mut a = Attrs {
        scheme: "pkcs11",
        list,
    };
    a.refuse_inline_secret("pin-value", "pin-source=env:VAR or pin-source=file:PATH")?;
    if let Some(t) = a.take("type") {
        if t != "secret-key" {
            return Err(Error::invalid(format!(
                "pkcs11: the root key is a secret key (type=secret-key), not {:?}",
                truncate_for_message(&t, ECHO)
            )));
        }
    }
    if a.take("id").is_some() {
        return Err(Error::unsupported(
            "pkcs11: keys are found by label (object=…); id is not supported",
        ));
    }
    let token = a.require("token")?;
    let object = a.require("object")?;
    let module = PathBuf::from(a.require("module-path")?);
    let pin = a.require("pin-source")?;
    let pin = if let Some(var) = pin.strip_prefix("env:") {
        check_env_name(var)?;
        PinSource::Env(var.to_owned())
    } else if let Some(path) = pin.strip_prefix("file:") {
        PinSource::File(PathBuf::from(non_empty(
            "pkcs11: the pin-source file path",
            path,
        )?))
    } else {
        return Err(Error::invalid(
            "pkcs11: pin-source must be env:VAR or file:PATH",
        ));
    };
    let create = a.flag("x-create")?;
    a.finish()?;
    Ok(Pkcs11Uri {
        token,
        object,
        module,
        pin,
        create,
    })
}

#[cfg(feature = "pkcs11")]
fn pkcs11(rest: &str) -> Result<Box<dyn Root>> {
    use super::{Pkcs11Config, Pkcs11Pin, Pkcs11Root, SecretString};
    let u = parse_pkcs11(rest)?;
    let pin = match u.pin {
        PinSource::Env(var) => Pkcs11Pin::Env(var),
        PinSource::File(path) => {
            let mut text = read_secret_file("PKCS#11 PIN", &path)?;
            let keep = text.trim_end_matches(['\r', '\n']).len();
            text.truncate(keep);
            Pkcs11Pin::Value(SecretString::from(text.as_str().to_owned()))
        }
    };
    let mut config = Pkcs11Config::new(u.module, u.token, pin, u.object);
    config.create_key = u.create;
    Ok(Box::new(Pkcs11Root::open(&config)?))
}

#[cfg(not(feature = "pkcs11"))]
fn pkcs11(rest: &str) -> Result<Box<dyn Root>> {
    parse_pkcs11(rest)?;
    Err(Error::unsupported(
        "pkcs11: roots need keystrata built with the pkcs11 feature",
    ))
}

#[cfg_attr(not(feature = "kmip"), allow(dead_code))]
struct KmipUri {
    host: String,
    port: Option<u16>,
    key_name: Option<String>,
    key_id: Option<String>,
    ca: PathBuf,
    cert: PathBuf,
    client_key: PathBuf,
    v2: bool,
    server_name: Option<String>,
    timeout: Option<std::time::Duration>,
    create: bool,
    /// `transport=https-json`: Cosmian KMS's JSON TTLV API on `PORT`.
    json: bool,
}

/// `kmip://HOST[:PORT][/]?attributes`.
fn parse_kmip(rest: &str) -> Result<KmipUri> {
    let Some(rest) = rest.strip_prefix("//") else {
        return Err(Error::invalid("kmip: the form is kmip://HOST[:PORT]?…"));
    };
    let (authority, mut attrs) = split_query("kmip", rest)?;
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.contains('@') {
        return Err(Error::invalid(
            "kmip: user information is refused: secrets never go in a root URI",
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| Error::invalid("kmip: an IPv6 host needs its closing ]"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| Error::invalid("kmip: expected :PORT after the IPv6 host"))?,
            ),
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host = non_empty("kmip: the host", host)?.to_owned();
    if host.contains('/') {
        return Err(Error::invalid("kmip: the form is kmip://HOST[:PORT]?…"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|&n| n != 0).ok_or_else(|| {
            Error::invalid(format!(
                "kmip: the port must be 1 to 65535, not {:?}",
                truncate_for_message(p, ECHO)
            ))
        })?),
    };
    let mut a = Attrs {
        scheme: "kmip",
        list: std::mem::take(&mut attrs),
    };
    a.refuse_inline_secret("client-key-pem", "client-key=FILE")?;
    let key_name = a.take("key-name");
    let key_id = a.take("key-id");
    match (&key_name, &key_id) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("kmip: give key-name or key-id, not both"))
        }
        (None, None) => {
            return Err(Error::invalid(
                "kmip: the key-name or key-id attribute is required",
            ))
        }
        (Some(v), None) | (None, Some(v)) => {
            non_empty("kmip: the key-name or key-id attribute", v)?;
        }
    }
    let ca = PathBuf::from(a.require("ca")?);
    let cert = PathBuf::from(a.require("cert")?);
    let client_key = PathBuf::from(a.require("client-key")?);
    let v2 = a.either("version", "1.4", "2.0")?;
    let server_name = a.take("server-name");
    let timeout = match a.take("timeout") {
        None => None,
        Some(t) => Some(
            t.parse::<u64>()
                .ok()
                .filter(|&s| (1..=3600).contains(&s))
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "kmip: timeout must be 1 to 3600 seconds, not {:?}",
                        truncate_for_message(&t, ECHO)
                    ))
                })?,
        ),
    };
    let json = a.either("transport", "ttlv", "https-json")?;
    let create = a.flag("x-create")?;
    if create && key_id.is_some() {
        return Err(Error::invalid(
            "kmip: x-create needs key-name (a key id is the server's to choose)",
        ));
    }
    a.finish()?;
    Ok(KmipUri {
        host,
        port,
        key_name,
        key_id,
        ca,
        cert,
        client_key,
        v2,
        server_name,
        timeout,
        create,
        json,
    })
}

#[cfg(feature = "kmip")]
fn kmip(rest: &str) -> Result<Box<dyn Root>> {
    use super::{KmipConfig, KmipKeyRef, KmipRoot, KmipVersion, DEFAULT_KMIP_PORT};
    let u = parse_kmip(rest)?;
    let key = match (u.key_name, u.key_id) {
        (Some(name), _) => KmipKeyRef::Name(name),
        (None, Some(id)) => KmipKeyRef::Id(id),
        (None, None) => return Err(Error::internal("kmip: no key after parsing")),
    };
    let mut config = KmipConfig::new(u.host, u.port.unwrap_or(DEFAULT_KMIP_PORT), key)
        .with_pem_files(&u.ca, &u.cert, &u.client_key)?;
    config.version = if u.v2 {
        KmipVersion::V2_0
    } else {
        KmipVersion::V1_4
    };
    config.server_name = u.server_name;
    if let Some(t) = u.timeout {
        config.timeout = t;
    }
    config.create_key = u.create;
    if u.json {
        config.transport = super::KmipTransport::HttpsJson;
    }
    Ok(Box::new(KmipRoot::connect(config)?))
}

#[cfg(not(feature = "kmip"))]
fn kmip(rest: &str) -> Result<Box<dyn Root>> {
    parse_kmip(rest)?;
    Err(Error::unsupported(
        "kmip: roots need keystrata built with the kmip feature",
    ))
}

#[cfg_attr(not(feature = "aws-kms"), allow(dead_code))]
struct AwsKmsUri {
    key: String,
    region: Option<String>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    timeout: Option<std::time::Duration>,
}

/// `aws-kms:KEY[?attributes]`: KEY is a key ID, key ARN, alias name or
/// alias ARN (percent-decoded); credentials come from the AWS SDK's chain
/// and are refused in the URI.
fn parse_aws_kms(rest: &str) -> Result<AwsKmsUri> {
    let (key, attrs) = split_query("aws-kms", rest)?;
    let key = pct_decode("aws-kms", non_empty("aws-kms: the key (aws-kms:KEY)", key)?)?;
    let mut a = Attrs {
        scheme: "aws-kms",
        list: attrs,
    };
    for secret in ["access-key-id", "secret-access-key", "session-token"] {
        a.refuse_inline_secret(
            secret,
            "the AWS SDK's credential chain (environment, profile, web identity)",
        )?;
    }
    let mut optional = |name: &str| -> Result<Option<String>> {
        match a.take(name) {
            None => Ok(None),
            Some(v) => Ok(Some(
                non_empty(&format!("aws-kms: the {name} attribute"), &v)?.to_owned(),
            )),
        }
    };
    let region = optional("region")?;
    let endpoint_url = optional("endpoint-url")?;
    if let Some(url) = &endpoint_url {
        let authority = url.split("://").nth(1).unwrap_or("");
        if authority
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .contains('@')
        {
            return Err(Error::invalid(
                "aws-kms: user information in endpoint-url is refused: secrets never go in a \
                 root URI",
            ));
        }
    }
    let profile = optional("profile")?;
    let timeout = optional("timeout")?
        .map(|t| {
            t.parse::<u64>()
                .ok()
                .filter(|&s| (1..=3600).contains(&s))
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "aws-kms: timeout must be 1 to 3600 seconds, not {:?}",
                        truncate_for_message(&t, ECHO)
                    ))
                })
        })
        .transpose()?;
    a.finish()?;
    Ok(AwsKmsUri {
        key,
        region,
        endpoint_url,
        profile,
        timeout,
    })
}

#[cfg(feature = "aws-kms")]
fn aws_kms(rest: &str) -> Result<Box<dyn Root>> {
    use super::{AwsKmsConfig, AwsKmsRoot};
    let u = parse_aws_kms(rest)?;
    let mut config = AwsKmsConfig::new(u.key);
    config.region = u.region;
    config.endpoint_url = u.endpoint_url;
    config.profile = u.profile;
    if let Some(t) = u.timeout {
        config.timeout = t;
    }
    Ok(Box::new(AwsKmsRoot::connect(config)?))
}

#[cfg(not(feature = "aws-kms"))]
fn aws_kms(rest: &str) -> Result<Box<dyn Root>> {
    parse_aws_kms(rest)?;
    Err(Error::unsupported(
        "aws-kms: roots need keystrata built with the aws-kms feature",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn err(uri: &str) -> Error {
        match from_uri(uri) {
            Ok(_) => panic!("{uri} opened"),
            Err(e) => e,
        }
    }

    #[test]
    fn pkcs11_grammar() {
        let u = parse_pkcs11(
            "token=my%20token;object=root;type=secret-key?module-path=/m.so&pin-source=env:PIN&x-create=true",
        )
        .unwrap();
        assert_eq!((u.token.as_str(), u.object.as_str()), ("my token", "root"));
        assert_eq!(u.module, PathBuf::from("/m.so"));
        assert!(matches!(u.pin, PinSource::Env(ref v) if v == "PIN"));
        assert!(u.create);
        let u =
            parse_pkcs11("token=t;object=k?module-path=/m.so&pin-source=file:/run/pin").unwrap();
        assert!(matches!(u.pin, PinSource::File(ref p) if p == Path::new("/run/pin")));
        assert!(!u.create);
    }

    #[test]
    fn kmip_grammar() {
        let u = parse_kmip(
            "//[::1]:5697/?key-name=root&ca=/c&cert=/e&client-key=/k&version=2.0&server-name=kms&timeout=9&x-create=1",
        )
        .unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", Some(5697)));
        assert_eq!(u.key_name.as_deref(), Some("root"));
        assert!(u.v2 && u.create);
        assert_eq!(u.server_name.as_deref(), Some("kms"));
        assert_eq!(u.timeout, Some(std::time::Duration::from_secs(9)));
        let u = parse_kmip("//kms.example?key-id=42&ca=/c&cert=/e&client-key=/k").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("kms.example", None));
        assert_eq!(u.key_id.as_deref(), Some("42"));
        assert!(!u.v2 && !u.create && !u.json);
        let u = parse_kmip("//kms:9998?key-id=42&ca=/c&cert=/e&client-key=/k&transport=https-json")
            .unwrap();
        assert!(u.json);
        let e = parse_kmip("//kms?key-id=42&ca=/c&cert=/e&client-key=/k&transport=http")
            .err()
            .expect("an unknown transport");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(e.message().contains("transport"), "{e}");
    }

    #[test]
    fn aws_kms_grammar() {
        let u = parse_aws_kms(
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )
        .unwrap();
        assert_eq!(
            u.key,
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        );
        assert_eq!(
            (u.region, u.endpoint_url, u.profile, u.timeout),
            (None, None, None, None)
        );
        let u = parse_aws_kms(
            "alias%2Fkeystrata-root?region=us-east-1&endpoint-url=http://127.0.0.1:5000&profile=ops&timeout=9",
        )
        .unwrap();
        assert_eq!(u.key, "alias/keystrata-root");
        assert_eq!(u.region.as_deref(), Some("us-east-1"));
        assert_eq!(u.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(u.profile.as_deref(), Some("ops"));
        assert_eq!(u.timeout, Some(std::time::Duration::from_secs(9)));
    }

    #[test]
    fn errors_are_invalid_input_and_bounded() {
        let long = "x".repeat(500);
        for uri in [
            String::new(),
            "no-scheme".to_owned(),
            format!("{long}:y"),
            "age:".to_owned(),
            "age-recipient:".to_owned(),
            "age-recipient:AGE-SECRET-KEY-1QQQQ".to_owned(),
            "passphrase:".to_owned(),
            "passphrase:env:".to_owned(),
            "passphrase:1BAD".to_owned(),
            format!("passphrase:env:{long}"),
            "passphrase:file:".to_owned(),
            "pkcs11:".to_owned(),
            "pkcs11:token=t;object=k?module-path=/m.so&pin-value=123456".to_owned(),
            "pkcs11:token=t;object=k?module-path=/m.so".to_owned(),
            "pkcs11:token=t;object=k?module-path=/m.so&pin-source=123456".to_owned(),
            "pkcs11:token=t;object=k?module-path=/m.so&pin-source=env:P&x-create=maybe".to_owned(),
            "pkcs11:token=t;object=k;type=private?module-path=/m.so&pin-source=env:P".to_owned(),
            "pkcs11:token=t;token=u;object=k?module-path=/m.so&pin-source=env:P".to_owned(),
            "pkcs11:token=t;object=k?token=u&module-path=/m.so&pin-source=env:P".to_owned(),
            "pkcs11:token=%zz;object=k?module-path=/m.so&pin-source=env:P".to_owned(),
            "pkcs11:token=%ff;object=k?module-path=/m.so&pin-source=env:P".to_owned(),
            format!("pkcs11:token=t;object=k;{long}=1?module-path=/m.so&pin-source=env:P"),
            "pkcs11:token;object=k?module-path=/m.so&pin-source=env:P".to_owned(),
            "kmip:host".to_owned(),
            "kmip://?key-name=k&ca=/c&cert=/e&client-key=/k".to_owned(),
            "kmip://h:0?key-name=k&ca=/c&cert=/e&client-key=/k".to_owned(),
            "kmip://h:70000?key-name=k&ca=/c&cert=/e&client-key=/k".to_owned(),
            "kmip://[::1?key-name=k&ca=/c&cert=/e&client-key=/k".to_owned(),
            "kmip://u:secret@h?key-name=k&ca=/c&cert=/e&client-key=/k".to_owned(),
            "kmip://h?ca=/c&cert=/e&client-key=/k".to_owned(),
            "kmip://h?key-name=k&key-id=1&ca=/c&cert=/e&client-key=/k".to_owned(),
            "kmip://h?key-name=k&cert=/e&client-key=/k".to_owned(),
            "kmip://h?key-name=k&ca=/c&cert=/e".to_owned(),
            "kmip://h?key-name=k&ca=/c&cert=/e&client-key=/k&version=3".to_owned(),
            "kmip://h?key-name=k&ca=/c&cert=/e&client-key=/k&timeout=0".to_owned(),
            "kmip://h?key-id=1&ca=/c&cert=/e&client-key=/k&x-create=true".to_owned(),
            "kmip://h?key-name=k&ca=/c&cert=/e&client-key=/k&client-key-pem=SECRETPEM".to_owned(),
            "kmip://h?key-name=k&ca=/c&cert=/e&client-key=/k&colour=blue".to_owned(),
            "aws-kms:".to_owned(),
            "aws-kms:?region=us-east-1".to_owned(),
            "aws-kms:alias/k?region=".to_owned(),
            "aws-kms:alias/k?region=a&region=b".to_owned(),
            "aws-kms:alias/k?timeout=0".to_owned(),
            "aws-kms:alias/k?timeout=4000".to_owned(),
            "aws-kms:alias/k?colour=blue".to_owned(),
            "aws-kms:alias/k?secret-access-key=SECRETPEM".to_owned(),
            "aws-kms:alias/k?access-key-id=AKIA123456".to_owned(),
            "aws-kms:alias/k?session-token=SECRETPEM".to_owned(),
            "aws-kms:alias/k?region=us-east-1&endpoint-url=https://u:secret@h".to_owned(),
            format!("aws-kms:alias/k?{long}=1"),
        ] {
            let e = err(&uri);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{uri}: {e}");
            assert!(e.message().chars().count() < 300, "{uri}: {e}");
            for secret in ["123456", "SECRETPEM", "secret@", "AGE-SECRET-KEY-1QQQQ"] {
                assert!(!e.message().contains(secret), "{uri}: {e}");
            }
            assert!(!e.message().contains(&"x".repeat(100)), "{uri}: {e}");
        }
    }

    #[test]
    fn unknown_and_unserved_schemes() {
        assert_eq!(err("vault:secret/x").kind(), ErrorKind::InvalidInput);
        assert!(err("vault:secret/x").message().contains("\"vault\""));
        // Without the feature a well-formed aws-kms: URI is Unsupported;
        // with it, opening one reaches AWS (tested against moto in
        // tests/conformance_aws_kms.rs).
        #[cfg(not(feature = "aws-kms"))]
        assert_eq!(
            err("aws-kms:alias/k?region=us-east-1").kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            err("pkcs11:token=t;object=k;id=%01?module-path=/m.so&pin-source=env:P").kind(),
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn passphrase_from_a_file_drops_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pass");
        std::fs::write(&p, "correct horse\n").unwrap();
        let a = from_uri(&format!("passphrase:file:{}", p.display())).unwrap();
        let b = PassphraseRoot::with_work_factor("correct horse", 10).unwrap();
        let kc = crate::Keychain::generate().unwrap();
        let saved = kc.save(&b).unwrap();
        assert_eq!(
            crate::Keychain::load(&saved, &*a)
                .unwrap()
                .keys()
                .expect("keys"),
            kc.keys().expect("keys")
        );
        let missing = dir.path().join("none");
        assert_eq!(
            err(&format!("passphrase:file:{}", missing.display())).kind(),
            ErrorKind::Io
        );
    }
}
