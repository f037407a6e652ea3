//! `keystrata encrypt` and `keystrata decrypt`: files and pipes of any
//! size through the streaming format (the keychain's streaming primary),
//! in O(segment) memory.

use std::io::{IsTerminal, Read, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keystrata::stream::error_of;
use keystrata::{Error, ErrorKind, Purpose};
use serde_json::json;

use crate::cli::{Global, StreamArgs};
use crate::fail::{err, io, usage, Failure, Outcome};
use crate::io::{check_terminal, input_name, open_input, AtomicFile, Dest, Mode};
use crate::open;
use crate::out::{note, print_json};

/// The copy buffer: small beside a 1 MiB segment.
const BUF: usize = 64 * 1024;

/// `encrypt`.
pub fn encrypt(g: &Global, a: &StreamArgs) -> Outcome {
    let dest = Dest::parse(&a.output);
    if g.json && dest == Dest::Stdout {
        return Err(usage(
            "--json needs -o FILE: the stream cannot go inside JSON",
        ));
    }
    check_terminal(&dest, a.force, "binary ciphertext", "")?;
    let (input, size) = open_input(&a.input)?;
    let kc = open::keychain(g)?;
    let key = kc
        .primary_for(Purpose::Stream)
        .map_err(|e| match e.kind() {
            ErrorKind::UnknownKey => err(
                ErrorKind::UnknownKey,
                format!(
                    "{} (add one: keystrata keychain rotate --purpose stream)",
                    e.message()
                ),
            ),
            _ => e.into(),
        })?;
    let progress = progress(g, size, "encrypting");
    let mut input = Counted::new(input, input_name(&a.input), progress.clone());
    let aad = a.aad.aad.as_bytes();
    let written = match &dest {
        Dest::Stdout => {
            let out = Counted::new(std::io::stdout().lock(), "stdout", None);
            let mut w = kc.encrypting_writer(out, aad)?;
            pump(&mut input, &mut w, read_plain, error_of)?;
            w.finish()?.count
        }
        Dest::File(path) => {
            let file = AtomicFile::create(path, Mode::Public)?;
            let out = Counted::new(file, &path.display().to_string(), None);
            let mut w = kc.encrypting_writer(out, aad)?;
            pump(&mut input, &mut w, read_plain, error_of)?;
            let out = w.finish()?;
            let n = out.count;
            out.inner.commit()?;
            n
        }
    };
    progress.finish_and_clear();
    if g.json {
        print_json(&json!({
            "input": input_json(&a.input),
            "output": dest.json(),
            "key_id": key.key_id,
            "stream_format": key.stream_format.map(|f| f.name()),
            "plaintext_bytes": input.count,
            "ciphertext_bytes": written,
        }))?;
    } else if dest != Dest::Stdout {
        note(
            g,
            &format!(
                "encrypted {} bytes under stream key {} into {}",
                input.count,
                key.key_id,
                dest.name()
            ),
        );
    }
    Ok(0)
}

/// `decrypt`.
pub fn decrypt(g: &Global, a: &StreamArgs) -> Outcome {
    let dest = Dest::parse(&a.output);
    if g.json && dest == Dest::Stdout {
        return Err(usage(
            "--json needs -o FILE: the plaintext cannot go inside JSON",
        ));
    }
    let (input, size) = open_input(&a.input)?;
    let kc = open::keychain(g)?;
    let progress = progress(g, size, "decrypting");
    let input = Counted::new(input, input_name(&a.input), progress.clone());
    let mut r = kc.decrypting_reader(input, a.aad.aad.as_bytes())?;
    let (written, key_id) = match &dest {
        Dest::Stdout => {
            let mut out = std::io::stdout().lock();
            let mut n = 0u64;
            let res = pump_counting(&mut r, &mut out, &mut n, "stdout");
            if let Err(f) = res {
                return Err(partial(f, n));
            }
            out.flush().map_err(|e| io("writing stdout", e))?;
            (n, r.key_id())
        }
        Dest::File(path) => {
            // Plaintext: 0600, and renamed into place only once the whole
            // stream authenticated; on any error the temporary file goes.
            let mut file = AtomicFile::create(path, Mode::Secret)?;
            let mut n = 0u64;
            pump_counting(&mut r, &mut file, &mut n, &dest.name())?;
            let key_id = r.key_id();
            file.commit()?;
            (n, key_id)
        }
    };
    progress.finish_and_clear();
    let read = r.into_inner().count;
    if g.json {
        print_json(&json!({
            "input": input_json(&a.input),
            "output": dest.json(),
            "key_id": key_id,
            "ciphertext_bytes": read,
            "plaintext_bytes": written,
        }))?;
    } else if dest != Dest::Stdout {
        note(
            g,
            &format!(
                "decrypted {written} bytes (stream key {}) into {}",
                key_id.map_or("?".to_owned(), |k| k.to_string()),
                dest.name()
            ),
        );
    }
    Ok(0)
}

fn input_json(name: &str) -> serde_json::Value {
    if name == "-" {
        serde_json::Value::Null
    } else {
        json!(name)
    }
}

/// A decryption to stdout that failed after some plaintext went out.
fn partial(f: Failure, written: u64) -> Failure {
    match f {
        Failure::Keystrata(e) if written > 0 => Failure::Keystrata(Error::new(
            e.kind(),
            format!(
                "{} ({written} bytes were already written to stdout: discard them)",
                e.message()
            ),
        )),
        f => f,
    }
}

fn read_plain(e: std::io::Error) -> Failure {
    error_of(e).into()
}

/// Copies `r` into `w`; errors through the two mappers.
fn pump<R: Read + ?Sized, W: Write + ?Sized>(
    r: &mut R,
    w: &mut W,
    read_err: fn(std::io::Error) -> Failure,
    write_err: fn(std::io::Error) -> Error,
) -> Result<u64, Failure> {
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        w.write_all(&buf[..n])
            .map_err(|e| Failure::from(write_err(e)))?;
        total += n as u64;
    }
}

/// Copies decrypted plaintext from `r` into `w`, counting in `n` what was
/// written; plaintext is wiped from the buffer.
fn pump_counting<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    n: &mut u64,
    out: &str,
) -> Result<(), Failure> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; BUF]);
    loop {
        let got = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(error_of(e).into()),
        };
        w.write_all(&buf[..got])
            .map_err(|e| io(format!("writing {out}"), e))?;
        *n += got as u64;
    }
}

/// A reader or writer that counts bytes, advances a progress bar, and
/// names itself in its I/O errors (as keystrata `Io` errors that
/// `stream::error_of` finds again through the stream adapters).
struct Counted<T> {
    inner: T,
    name: String,
    count: u64,
    progress: Option<ProgressBar>,
}

impl<T> Counted<T> {
    fn new(inner: T, name: &str, progress: Option<ProgressBar>) -> Counted<T> {
        Counted {
            inner,
            name: name.to_owned(),
            count: 0,
            progress,
        }
    }

    fn wrap(&self, verb: &str, e: std::io::Error) -> std::io::Error {
        if e.get_ref().is_some_and(|i| i.is::<Error>()) {
            return e;
        }
        std::io::Error::new(
            e.kind(),
            Error::new(ErrorKind::Io, format!("{verb} {}: {e}", self.name)),
        )
    }
}

impl<T: Read> Read for Counted<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| self.wrap("reading", e))?;
        self.count += n as u64;
        if let Some(p) = &self.progress {
            p.inc(n as u64);
        }
        Ok(n)
    }
}

impl<T: Write> Write for Counted<T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf).map_err(|e| self.wrap("writing", e))?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().map_err(|e| self.wrap("writing", e))
    }
}

/// A progress bar on stderr, only when stderr is a terminal (and not
/// `--quiet`): bytes of the input, with a total when the input is a file.
fn progress(g: &Global, size: Option<u64>, what: &str) -> Option<ProgressBar> {
    if g.quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let (bar, template) = match size {
        Some(n) => (
            ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
            "{msg} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{msg} {spinner} {bytes} {binary_bytes_per_sec}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    Some(bar)
}

trait Finish {
    fn finish_and_clear(&self);
}

impl Finish for Option<ProgressBar> {
    fn finish_and_clear(&self) {
        if let Some(p) = self {
            p.finish_and_clear();
        }
    }
}
