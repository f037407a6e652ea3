//! age roots: X25519 identities and scrypt passphrases.

use std::fmt;
use std::io::{Read, Write};
use std::iter;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use age::secrecy::SecretString;
use zeroize::Zeroizing;

use super::Root;
use crate::error::{Error, ErrorKind, Result};
use crate::key_manager::{check_wrap_input, KeyManager};
use crate::secret::SecretBytes;
use crate::wrapped_key::{wrap_aad, Envelope};

/// Provider name of [`AgeRoot`].
pub const AGE_PROVIDER: &str = "age";
/// Provider name of [`PassphraseRoot`].
pub const SCRYPT_PROVIDER: &str = "age-scrypt";

/// The scrypt work factor (log2 N) a [`PassphraseRoot`] encrypts with by
/// default: 18, as the age CLI picks on typical hardware (about 1 s).
pub const DEFAULT_SCRYPT_WORK_FACTOR: u8 = 18;
/// The largest work factor a [`PassphraseRoot`] accepts when decrypting,
/// by default: 20, which makes scrypt use 1 GiB of memory (each step up
/// doubles time and memory). A hostile file asking for more is refused
/// with `Policy` before any scrypt work; raise the limit with
/// [`PassphraseRoot::with_limits`].
pub const DEFAULT_MAX_SCRYPT_WORK_FACTOR: u8 = 20;

/// The largest age header keystrata parses (from the version line through
/// the MAC line). The age crate's header parser takes time quadratic in the
/// header's size, so a hostile file is refused before it gets there. A
/// keychain header with a few dozen recipients is under 8 KiB.
pub const MAX_AGE_HEADER_LEN: usize = 16 * 1024;
/// The most recipient stanzas an age header may have.
pub const MAX_AGE_STANZAS: usize = 64;
/// The most arguments one stanza may have (X25519 has 1, scrypt 2, the
/// age crate's grease stanzas a few).
pub const MAX_AGE_STANZA_ARGS: usize = 8;
/// The most body lines one stanza may have (X25519 and scrypt have 1, a
/// grease stanza up to 5).
pub const MAX_AGE_STANZA_LINES: usize = 16;

struct AgeInner {
    identities: Vec<age::x25519::Identity>,
    recipients: Vec<age::x25519::Recipient>,
    closed: AtomicBool,
}

/// A root of age X25519 keys: keychains are saved as age files encrypted to
/// the recipients, and opened with the identities.
///
/// Clones share one handle: closing one closes all.
#[derive(Clone)]
pub struct AgeRoot(Arc<AgeInner>);

impl fmt::Debug for AgeRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeRoot")
            .field("recipients", &self.recipients())
            .field("identities", &self.0.identities.len())
            .finish_non_exhaustive()
    }
}

fn parse_identities<S: AsRef<str>>(
    identities: impl IntoIterator<Item = S>,
) -> Result<Vec<age::x25519::Identity>> {
    let mut out = Vec::new();
    for (n, s) in identities.into_iter().enumerate() {
        // Accept a bare key or the whole text `age-keygen` writes (comment
        // lines start with '#').
        let mut found = false;
        for line in s.as_ref().lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = age::x25519::Identity::from_str(line).map_err(|_| {
                // Never echo the input: it may be a secret key.
                Error::invalid(format!(
                    "identity {} is not an age X25519 identity (AGE-SECRET-KEY-1…)",
                    n + 1
                ))
            })?;
            out.push(id);
            found = true;
        }
        if !found {
            return Err(Error::invalid(format!("identity {} is empty", n + 1)));
        }
    }
    Ok(out)
}

fn parse_recipients<S: AsRef<str>>(
    recipients: impl IntoIterator<Item = S>,
) -> Result<Vec<age::x25519::Recipient>> {
    recipients
        .into_iter()
        .map(|s| {
            let s = s.as_ref().trim();
            age::x25519::Recipient::from_str(s).map_err(|_| {
                // Never echo the input: a secret key passed in the wrong
                // place would end up in a log.
                if s.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
                    Error::invalid(
                        "an age identity (AGE-SECRET-KEY-1…) was given as a recipient; \
                         pass it as an identity (its recipient is derived from it)",
                    )
                } else {
                    Error::invalid("a recipient is not an age X25519 recipient (age1…)")
                }
            })
        })
        .collect()
}

impl AgeRoot {
    /// A root from identities (`AGE-SECRET-KEY-1…`, or the whole text
    /// `age-keygen` prints, comments included) and recipients (`age1…`).
    ///
    /// Keychains are encrypted to the recipients plus the public keys of the
    /// identities; at least one of the two lists must be non-empty. A root
    /// without identities can save but not load.
    pub fn new<I, R, S, T>(identities: I, recipients: R) -> Result<AgeRoot>
    where
        I: IntoIterator<Item = S>,
        R: IntoIterator<Item = T>,
        S: AsRef<str>,
        T: AsRef<str>,
    {
        let identities = parse_identities(identities)?;
        let mut recipients = parse_recipients(recipients)?;
        for id in &identities {
            let r = id.to_public();
            if !recipients.iter().any(|x| x.to_string() == r.to_string()) {
                recipients.push(r);
            }
        }
        if recipients.is_empty() {
            return Err(Error::invalid(
                "an AgeRoot needs at least one identity or recipient",
            ));
        }
        Ok(AgeRoot(Arc::new(AgeInner {
            identities,
            recipients,
            closed: AtomicBool::new(false),
        })))
    }

    /// A root with one freshly generated identity.
    pub fn generate() -> AgeRoot {
        let id = age::x25519::Identity::generate();
        let r = id.to_public();
        AgeRoot(Arc::new(AgeInner {
            identities: vec![id],
            recipients: vec![r],
            closed: AtomicBool::new(false),
        }))
    }

    /// The recipients (`age1…`) keychains are encrypted to.
    pub fn recipients(&self) -> Vec<String> {
        self.0.recipients.iter().map(ToString::to_string).collect()
    }

    /// The identities as `AGE-SECRET-KEY-1…` strings, to store them
    /// elsewhere. The name is a warning: these are the root's secrets.
    pub fn insecure_identity_strings(&self) -> Vec<SecretString> {
        self.0.identities.iter().map(|i| i.to_string()).collect()
    }

    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let enc = age::Encryptor::with_recipients(
            self.0.recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(|e| Error::new(ErrorKind::Backend, format!("age: {e}")))?;
        age_write(enc, plaintext)
    }

    fn decrypt(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.0.identities.is_empty() {
            return Err(Error::invalid(
                "this AgeRoot has recipients only; it needs an identity to decrypt",
            ));
        }
        let dec = age_decryptor(data)?;
        if dec.is_scrypt() {
            return Err(Error::new(
                ErrorKind::Authentication,
                "this age file is protected by a passphrase; use a PassphraseRoot",
            ));
        }
        age_read(
            dec,
            self.0.identities.iter().map(|i| i as &dyn age::Identity),
        )
    }
}

fn age_write(enc: age::Encryptor, plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(plaintext.len() + 256);
    let io_err = |e: std::io::Error| Error::new(ErrorKind::Backend, format!("age: {e}"));
    let mut w = enc.wrap_output(&mut out).map_err(io_err)?;
    w.write_all(plaintext).map_err(io_err)?;
    w.finish().map_err(io_err)?;
    Ok(out)
}

/// What the header check learned: the scrypt work factor, if the file is
/// passphrase-encrypted.
struct HeaderFacts {
    scrypt_log_n: Option<u8>,
}

/// Refuses, in time linear in [`MAX_AGE_HEADER_LEN`], an age file whose
/// header is larger than that, has more than [`MAX_AGE_STANZAS`] stanzas,
/// or lacks its MAC line; reads the scrypt work factor if there is one.
fn check_age_header(data: &[u8]) -> Result<HeaderFacts> {
    const VERSION_LINE: &[u8] = b"age-encryption.org/v1\n";
    if !data.starts_with(VERSION_LINE) {
        return Err(Error::format("not an age file, or its header is damaged"));
    }
    let window = &data[..data.len().min(MAX_AGE_HEADER_LEN)];
    let mut stanzas = 0usize;
    let mut body_lines = 0usize;
    let mut scrypt_log_n = None;
    let mut at = VERSION_LINE.len();
    loop {
        let Some(nl) = window[at..].iter().position(|&b| b == b'\n') else {
            return Err(Error::format(format!(
                "the age header is longer than {MAX_AGE_HEADER_LEN} bytes or cut short"
            )));
        };
        let line = &window[at..at + nl];
        if line.starts_with(b"--- ") {
            return Ok(HeaderFacts { scrypt_log_n });
        }
        if let Some(args) = line.strip_prefix(b"-> ") {
            stanzas += 1;
            body_lines = 0;
            // The age crate's parser is quadratic in these too (fuzz
            // finding F2): a stanza of thousands of one-character
            // arguments or body lines took 0.3-0.6 s within the size cap.
            if args.split(|&b| b == b' ').count() > MAX_AGE_STANZA_ARGS + 1 {
                return Err(Error::format(format!(
                    "an age stanza has more than {MAX_AGE_STANZA_ARGS} arguments"
                )));
            }
            if stanzas > MAX_AGE_STANZAS {
                return Err(Error::format(format!(
                    "the age header has more than {MAX_AGE_STANZAS} recipient stanzas"
                )));
            }
            let mut words = args.split(|&b| b == b' ');
            if words.next() == Some(&b"scrypt"[..]) {
                let log_n = words
                    .nth(1)
                    .and_then(|w| std::str::from_utf8(w).ok())
                    .and_then(|w| w.parse::<u8>().ok())
                    .ok_or_else(|| Error::format("the age scrypt stanza is malformed"))?;
                scrypt_log_n = Some(log_n);
            }
        } else {
            body_lines += 1;
            if body_lines > MAX_AGE_STANZA_LINES {
                return Err(Error::format(format!(
                    "an age stanza has more than {MAX_AGE_STANZA_LINES} body lines"
                )));
            }
        }
        at += nl + 1;
    }
}

fn age_decryptor(data: &[u8]) -> Result<age::Decryptor<&[u8]>> {
    check_age_header(data)?;
    age::Decryptor::new(data).map_err(map_decrypt_error)
}

fn age_read<'a>(
    dec: age::Decryptor<&[u8]>,
    identities: impl Iterator<Item = &'a dyn age::Identity>,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut r = dec.decrypt(identities).map_err(map_decrypt_error)?;
    let mut out = Zeroizing::new(Vec::new());
    r.read_to_end(&mut out).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::format("age file is truncated")
        } else {
            Error::new(
                ErrorKind::Authentication,
                "age file could not be authenticated (tampered or truncated)",
            )
        }
    })?;
    Ok(out)
}

fn map_decrypt_error(e: age::DecryptError) -> Error {
    use age::DecryptError as D;
    match e {
        D::NoMatchingKeys => Error::new(
            ErrorKind::Authentication,
            "no identity of this root opens the age file (wrong identity?)",
        ),
        D::DecryptionFailed | D::InvalidMac | D::KeyDecryptionFailed => Error::new(
            ErrorKind::Authentication,
            "age file could not be opened (wrong passphrase, or tampered)",
        ),
        D::ExcessiveWork { required, target } => Error::new(
            ErrorKind::Policy,
            format!("age file asks for scrypt work factor {required}; the limit is {target}"),
        ),
        D::InvalidHeader => Error::format("not an age file, or its header is damaged"),
        D::UnknownFormat => Error::new(ErrorKind::Unsupported, "unknown age format version"),
        D::Io(err) => Error::format(format!("age file is truncated or unreadable: {err}")),
        #[allow(unreachable_patterns)]
        _ => Error::new(ErrorKind::Backend, "age decryption failed"),
    }
}

/// Wraps by age-encrypting `aad ‖ key`, where aad binds provider, key ID,
/// version 1 and the context; unwrapping checks the prefix.
fn age_wrap(
    provider: &str,
    key_id: &str,
    key: &[u8],
    context: &[u8],
    encrypt: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<Envelope> {
    check_wrap_input(key)?;
    let mut pt = Zeroizing::new(wrap_aad(provider, key_id, 1, context)?);
    pt.extend_from_slice(key);
    Ok(Envelope {
        key_id: key_id.to_owned(),
        key_version: 1,
        provider: provider.to_owned(),
        ciphertext: encrypt(&pt)?,
    })
}

fn age_unwrap(
    provider: &str,
    env: &Envelope,
    context: &[u8],
    decrypt: impl FnOnce(&[u8]) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<SecretBytes> {
    crate::key_manager::check_provider(env, provider)?;
    let aad = wrap_aad(provider, &env.key_id, env.key_version, context)?;
    let pt = decrypt(&env.ciphertext)?;
    if pt.len() <= aad.len() || pt[..aad.len()] != aad[..] {
        return Err(Error::authentication());
    }
    Ok(SecretBytes::new(pt[aad.len()..].to_vec()))
}

struct PassInner {
    passphrase: SecretString,
    work_factor: u8,
    max_work_factor: u8,
    closed: AtomicBool,
}

/// A root of one passphrase (age scrypt): the saved keychain is an age
/// file that `age -d` opens with the passphrase.
///
/// For people, not programs: a program should hold an [`AgeRoot`]
/// identity. Each save and load costs one scrypt (about 1 s at the default
/// work factor).
#[derive(Clone)]
pub struct PassphraseRoot(Arc<PassInner>);

impl fmt::Debug for PassphraseRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassphraseRoot")
            .field("work_factor", &self.0.work_factor)
            .finish_non_exhaustive()
    }
}

impl PassphraseRoot {
    /// A root from a passphrase, with the default work factor. An empty
    /// passphrase is refused.
    pub fn new(passphrase: impl Into<String>) -> Result<PassphraseRoot> {
        PassphraseRoot::with_work_factor(passphrase, DEFAULT_SCRYPT_WORK_FACTOR)
    }

    /// A root whose saves use scrypt work factor `log_n` (N = 2^log_n,
    /// 1..=30). Loading accepts files up to
    /// `max(log_n, DEFAULT_MAX_SCRYPT_WORK_FACTOR)`.
    pub fn with_work_factor(passphrase: impl Into<String>, log_n: u8) -> Result<PassphraseRoot> {
        PassphraseRoot::with_limits(passphrase, log_n, log_n.max(DEFAULT_MAX_SCRYPT_WORK_FACTOR))
    }

    /// A root whose saves use work factor `log_n` and whose loads refuse
    /// files asking for more than `max_log_n` (both 1..=30, `log_n ≤
    /// max_log_n`). scrypt needs `2^max_log_n` KiB of memory at the limit.
    pub fn with_limits(
        passphrase: impl Into<String>,
        log_n: u8,
        max_log_n: u8,
    ) -> Result<PassphraseRoot> {
        let p: String = passphrase.into();
        if p.is_empty() {
            return Err(Error::invalid("the passphrase is empty"));
        }
        if log_n == 0 || log_n > 30 || max_log_n > 30 || max_log_n < log_n {
            return Err(Error::invalid(
                "scrypt work factors must be between 1 and 30, the limit no lower than the work factor",
            ));
        }
        Ok(PassphraseRoot(Arc::new(PassInner {
            passphrase: SecretString::from(p),
            work_factor: log_n,
            max_work_factor: max_log_n,
            closed: AtomicBool::new(false),
        })))
    }

    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut r = age::scrypt::Recipient::new(self.0.passphrase.clone());
        r.set_work_factor(self.0.work_factor);
        let enc = age::Encryptor::with_recipients(iter::once(&r as &dyn age::Recipient))
            .map_err(|e| Error::new(ErrorKind::Backend, format!("age: {e}")))?;
        age_write(enc, plaintext)
    }

    fn decrypt(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(log_n) = check_age_header(data)?.scrypt_log_n {
            if log_n > self.0.max_work_factor {
                return Err(Error::policy(format!(
                    "the age file asks for scrypt work factor {log_n}; the limit is {}",
                    self.0.max_work_factor
                )));
            }
            // scrypt (r = 8) needs 2^log_n KiB. Ask for it first, so a
            // process short of memory gets an error instead of an abort.
            let bytes = 1024usize
                .checked_shl(u32::from(log_n))
                .unwrap_or(usize::MAX);
            let mut probe: Vec<u8> = Vec::new();
            if probe.try_reserve_exact(bytes).is_err() {
                return Err(Error::unavailable(format!(
                    "not enough memory for scrypt work factor {log_n} ({} MiB)",
                    bytes >> 20
                )));
            }
            drop(probe);
        }
        let dec = age_decryptor(data)?;
        if !dec.is_scrypt() {
            return Err(Error::new(
                ErrorKind::Authentication,
                "this age file is encrypted to X25519 recipients; use an AgeRoot",
            ));
        }
        let mut id = age::scrypt::Identity::new(self.0.passphrase.clone());
        id.set_max_work_factor(self.0.max_work_factor);
        age_read(dec, iter::once(&id as &dyn age::Identity))
    }
}

/// What the two age roots differ in; [`age_root_impls`] builds their
/// `Root` and `KeyManager` implementations from it.
trait AgeBackend {
    const PROVIDER: &'static str;
    const NAME: &'static str;
    fn closed(&self) -> &AtomicBool;
    /// The key ID written into envelopes.
    fn wrap_key_id(&self) -> String;
    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>>;
    fn decrypt(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>>;

    fn check_open(&self) -> Result<()> {
        if self.closed().load(Ordering::Acquire) {
            Err(Error::unavailable(format!(
                "this {} was closed",
                Self::NAME
            )))
        } else {
            Ok(())
        }
    }
}

impl AgeBackend for AgeRoot {
    const PROVIDER: &'static str = AGE_PROVIDER;
    const NAME: &'static str = "AgeRoot";
    fn closed(&self) -> &AtomicBool {
        &self.0.closed
    }
    fn wrap_key_id(&self) -> String {
        self.0
            .recipients
            .first()
            .map(ToString::to_string)
            .unwrap_or_default()
    }
    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        AgeRoot::encrypt(self, plaintext)
    }
    fn decrypt(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        AgeRoot::decrypt(self, data)
    }
}

impl AgeBackend for PassphraseRoot {
    const PROVIDER: &'static str = SCRYPT_PROVIDER;
    const NAME: &'static str = "PassphraseRoot";
    fn closed(&self) -> &AtomicBool {
        &self.0.closed
    }
    fn wrap_key_id(&self) -> String {
        "scrypt".to_owned()
    }
    fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        PassphraseRoot::encrypt(self, plaintext)
    }
    fn decrypt(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        PassphraseRoot::decrypt(self, data)
    }
}

/// `KeyManager` and `Root` for an [`AgeBackend`]: both roots behave alike,
/// and every call after `close` fails with `Unavailable`.
macro_rules! age_root_impls {
    ($t:ty) => {
        // The age roots keep keychains in age's own format, not the
        // wrapped form: `age -d` opens them.
        impl Root for $t {
            fn protect(&self, keychain_json: &[u8]) -> Result<Vec<u8>> {
                self.check_open()?;
                AgeBackend::encrypt(self, keychain_json)
            }
            fn unprotect(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
                self.check_open()?;
                AgeBackend::decrypt(self, stored)
            }
        }

        impl KeyManager for $t {
            fn provider(&self) -> &str {
                <$t as AgeBackend>::PROVIDER
            }
            fn wrap_key(&self, plaintext_key: &[u8], context: &[u8]) -> Result<Envelope> {
                self.check_open()?;
                let key_id = self.wrap_key_id();
                age_wrap(
                    <$t as AgeBackend>::PROVIDER,
                    &key_id,
                    plaintext_key,
                    context,
                    |pt| AgeBackend::encrypt(self, pt),
                )
            }
            fn unwrap_key(&self, envelope: &Envelope, context: &[u8]) -> Result<SecretBytes> {
                self.check_open()?;
                age_unwrap(<$t as AgeBackend>::PROVIDER, envelope, context, |ct| {
                    AgeBackend::decrypt(self, ct)
                })
            }
            fn active_key_version(&self) -> Result<u32> {
                self.check_open()?;
                Ok(1)
            }
            fn health_check(&self) -> Result<()> {
                self.check_open()
            }
            fn close(&self) -> Result<()> {
                self.closed().store(true, Ordering::Release);
                Ok(())
            }
        }
    };
}

age_root_impls!(AgeRoot);
age_root_impls!(PassphraseRoot);
