//! Inputs and outputs: files or the standard streams, atomic output files,
//! the terminal rule, and the text encodings.
//!
//! Every output file is written under a temporary name in its directory
//! and renamed over the destination only when complete (after `fsync`), so
//! a failed or interrupted command never leaves a partial file behind: the
//! temporary file is removed on error, on drop, and on SIGINT, SIGTERM and
//! SIGHUP. (Only SIGKILL or a crash leaves one, named
//! `.NAME.keystrata-PID-N.tmp`, mode 0600 when it holds a secret.)

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, PoisonError};

use base64::Engine as _;

use crate::fail::{invalid, io, usage, Failure};

/// Where an output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// The standard output (`-`).
    Stdout,
    /// A file, replaced atomically.
    File(PathBuf),
}

impl Dest {
    /// `-` is stdout; anything else a file.
    pub fn parse(s: &str) -> Dest {
        if s == "-" {
            Dest::Stdout
        } else {
            Dest::File(PathBuf::from(s))
        }
    }

    /// The name to print (`stdout` or the path).
    pub fn name(&self) -> String {
        match self {
            Dest::Stdout => "stdout".to_owned(),
            Dest::File(p) => p.display().to_string(),
        }
    }

    /// The path for JSON output (`null` for stdout).
    pub fn json(&self) -> serde_json::Value {
        match self {
            Dest::Stdout => serde_json::Value::Null,
            Dest::File(p) => serde_json::Value::String(p.display().to_string()),
        }
    }
}

/// Who may read an output file.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// A secret (plaintext, a derived key): 0600.
    Secret,
    /// Anything else: 0666 less the umask, as any new file.
    Public,
    /// Exactly these permission bits (a file rewritten in place keeps its
    /// own).
    Exactly(u32),
}

/// The name of an input for messages.
pub fn input_name(name: &str) -> &str {
    if name == "-" {
        "stdin"
    } else {
        name
    }
}

/// An input opened for reading, with its size when it is a regular file.
pub fn open_input(name: &str) -> Result<(Box<dyn Read>, Option<u64>), Failure> {
    if name == "-" {
        return Ok((Box::new(std::io::stdin().lock()), None));
    }
    let f = File::open(name).map_err(|e| io(format!("reading {name}"), e))?;
    let meta = f.metadata().map_err(|e| io(format!("reading {name}"), e))?;
    if meta.is_dir() {
        return Err(invalid(format!("{name} is a directory")));
    }
    let size = meta.is_file().then_some(meta.len());
    Ok((Box::new(f), size))
}

/// Reads a whole input; with `limit`, more than `limit` bytes is an
/// `InvalidInput` error naming `what` (read no further than the limit).
pub fn read_input(name: &str, limit: Option<usize>, what: &str) -> Result<Vec<u8>, Failure> {
    let (r, _) = open_input(name)?;
    let mut buf = Vec::new();
    let res = match limit {
        Some(n) => r.take(n as u64 + 1).read_to_end(&mut buf),
        None => {
            let mut r = r;
            r.read_to_end(&mut buf)
        }
    };
    res.map_err(|e| io(format!("reading {}", input_name(name)), e))?;
    if let Some(n) = limit {
        if buf.len() > n {
            return Err(invalid(format!(
                "{} is over the {n}-byte limit of {what}",
                input_name(name)
            )));
        }
    }
    Ok(buf)
}

/// Refuses to write `what` to stdout when stdout is a terminal, unless
/// `force`: binary ciphertext garbles a terminal, and a secret printed
/// there lands in scrollback.
pub fn check_terminal(dest: &Dest, force: bool, what: &str, hint: &str) -> Result<(), Failure> {
    if *dest == Dest::Stdout && !force && std::io::stdout().is_terminal() {
        return Err(usage(format!(
            "refusing to write {what} to a terminal: use -o FILE or a pipe{hint}, or --force"
        )));
    }
    Ok(())
}

/// Writes `bytes` to `dest` (a file atomically).
pub fn write_output(dest: &Dest, bytes: &[u8], mode: Mode) -> Result<(), Failure> {
    match dest {
        Dest::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|()| out.flush())
                .map_err(|e| io("writing stdout", e))
        }
        Dest::File(path) => {
            let mut f = AtomicFile::create(path, mode)?;
            f.write_all(bytes)
                .map_err(|e| io(format!("writing {}", path.display()), e))?;
            f.commit()
        }
    }
}

/// Temporary files that exist now, removed if a signal ends the process.
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CLEANUP: Once = Once::new();
static SEQ: AtomicU64 = AtomicU64::new(0);

fn temps() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    TEMPS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// On SIGINT, SIGTERM or SIGHUP: remove the temporary files, then exit
/// with 128 + the signal's number, as the shell reports a signal.
fn install_cleanup() {
    CLEANUP.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                for p in temps().iter() {
                    let _ = std::fs::remove_file(p);
                }
                std::process::exit(128 + sig);
            }
        });
    });
}

/// An output file: a regular file is written under a temporary name
/// beside its destination and renamed over it by
/// [`commit`](AtomicFile::commit) (removed if dropped uncommitted); a
/// destination that exists and is not a regular file (`/dev/null`,
/// `/dev/stdout`, a FIFO, a terminal) is written directly, never replaced.
/// A symbolic link to a file stays a link: its target is replaced.
pub struct AtomicFile {
    file: Option<std::io::BufWriter<File>>,
    target: Target,
}

enum Target {
    /// Renamed over `dest` on commit.
    Temp { tmp: PathBuf, dest: PathBuf },
    /// Written in place (a device or a FIFO).
    Direct { dest: PathBuf },
}

impl AtomicFile {
    /// Opens the output for `dest`.
    pub fn create(dest: &Path, mode: Mode) -> Result<AtomicFile, Failure> {
        let at = |e| io(format!("writing {}", dest.display()), e);
        let dest = match std::fs::metadata(dest) {
            Ok(m) if m.is_dir() => {
                return Err(invalid(format!("{} is a directory", dest.display())))
            }
            Ok(m) if !m.is_file() => {
                let f = OpenOptions::new().write(true).open(dest).map_err(at)?;
                return Ok(AtomicFile {
                    file: Some(std::io::BufWriter::with_capacity(1 << 16, f)),
                    target: Target::Direct {
                        dest: dest.to_path_buf(),
                    },
                });
            }
            // Through a link to a file, the file is what is replaced.
            Ok(_) => std::fs::canonicalize(dest).map_err(at)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => dest.to_path_buf(),
            Err(e) => return Err(at(e)),
        };
        let name = dest
            .file_name()
            .ok_or_else(|| invalid(format!("{} names no file", dest.display())))?;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        install_cleanup();
        let bits = match mode {
            Mode::Secret => 0o600,
            Mode::Public => 0o666,
            // Set below, past the umask; 0600 until then.
            Mode::Exactly(_) => 0o600,
        };
        let mut last = None;
        for _ in 0..16 {
            let tmp = dir.join(format!(
                ".{}.keystrata-{}-{}.tmp",
                name.to_string_lossy(),
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            // Registered before it exists, so a signal between the two
            // still removes it.
            temps().push(tmp.clone());
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(bits)
                .open(&tmp);
            match opened {
                Ok(f) => {
                    let out = AtomicFile {
                        file: Some(std::io::BufWriter::with_capacity(1 << 16, f)),
                        target: Target::Temp {
                            tmp,
                            dest: dest.clone(),
                        },
                    };
                    if let (Mode::Exactly(m), Some(w)) = (mode, &out.file) {
                        w.get_ref()
                            .set_permissions(std::fs::Permissions::from_mode(m & 0o7777))
                            .map_err(at)?;
                    }
                    return Ok(out);
                }
                Err(e) => {
                    temps().retain(|p| p != &tmp);
                    if e.kind() != std::io::ErrorKind::AlreadyExists {
                        return Err(at(e));
                    }
                    last = Some(e);
                }
            }
        }
        Err(at(last.unwrap_or_else(|| {
            std::io::Error::other("no free temporary name")
        })))
    }

    /// Flushes and syncs the file, renames it over the destination and
    /// syncs the directory (a direct output is only flushed).
    pub fn commit(mut self) -> Result<(), Failure> {
        let Some(w) = self.file.take() else {
            return Err(invalid("output already committed"));
        };
        let (tmp, dest) = match &self.target {
            Target::Direct { dest } => {
                let what = format!("writing {}", dest.display());
                w.into_inner().map_err(|e| io(&what, e.into_error()))?;
                return Ok(());
            }
            Target::Temp { tmp, dest } => (tmp, dest),
        };
        let what = format!("writing {}", dest.display());
        let f = w.into_inner().map_err(|e| io(&what, e.into_error()))?;
        f.sync_all().map_err(|e| io(&what, e))?;
        drop(f);
        std::fs::rename(tmp, dest).map_err(|e| io(&what, e))?;
        temps().retain(|p| p != tmp);
        if let Some(dir) = dest.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("output already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            if let Target::Temp { tmp, .. } = &self.target {
                let _ = std::fs::remove_file(tmp);
                temps().retain(|p| p != tmp);
            }
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Standard base64 with padding.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes base64 text (white space anywhere is ignored); `Format` if it
/// is not base64.
pub fn unb64(text: &[u8], what: &str) -> Result<Vec<u8>, Failure> {
    let clean: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&clean)
        .map_err(|_| {
            crate::fail::err(
                keystrata::ErrorKind::Format,
                format!("{what} is not base64"),
            )
        })
}

/// A `YYYY-MM-DDTHH:MM:SSZ` UTC time for unix seconds.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory (removed by the test that made it).
    fn tempdir(name: &str) -> PathBuf {
        let p =
            std::env::temp_dir().join(format!("keystrata-cli-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        p
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_763_890_000), "2025-11-23T09:26:40Z");
    }

    #[test]
    fn hex_and_base64() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unb64(b" aGk=\n", "x").unwrap(), b"hi");
        assert!(unb64(b"!!", "x").is_err());
    }

    #[test]
    fn atomic_file_is_removed_unless_committed() {
        let dir = tempdir("atomic");
        let dest = dir.join("out");
        let mut f = AtomicFile::create(&dest, Mode::Secret).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let mut f = AtomicFile::create(&dest, Mode::Secret).unwrap();
        f.write_all(b"whole").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_link_stays_a_link_and_a_directory_is_refused() {
        let dir = tempdir("link");
        let target = dir.join("target");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut f = AtomicFile::create(&link, Mode::Public).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(AtomicFile::create(&dir, Mode::Public).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
