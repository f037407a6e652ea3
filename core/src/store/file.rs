//! The file store: a keychain in one file, shared by every process on the
//! machine (and every handle in a process) that opens the same path.
//!
//! - **Writes** take an exclusive OS lock (`flock`) on a sidecar file
//!   `.NAME.lock` beside the keychain, check that the file still holds the
//!   revision the writer read, and replace it atomically (temporary file,
//!   fsync, rename, fsync of the directory). The lock file is created once
//!   and never removed (removing a lock file races with its next user).
//! - **Revisions** are the SHA-256 of the file's bytes (first 128 bits).
//!   Every save is freshly encrypted by its root, so two writes never give
//!   the same bytes, and a revision cannot come back (no ABA).
//! - **Reads** take no lock: a rename is atomic, so a reader sees the old
//!   file or the new one, whole.
//! - **Change detection** compares the file's `stat` (inode, size, mtime)
//!   with the one last seen, and hashes the file only when it moved.
//!
//! A process killed while holding the lock releases it (the kernel drops
//! `flock` locks with the last descriptor). A lock held longer than
//! [`LOCK_TIMEOUT`] (a stopped process) gives `Unavailable`, not a hang.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{Revision, Store, Swap, Versioned};
use crate::error::{Error, Result};
use crate::sync::lock;

/// How long a writer waits for another writer's lock before giving up
/// with `Unavailable`.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes `bytes` to `path` so that a crash at any moment leaves either the
/// old file or the new one: write a temporary file in the same directory,
/// fsync it, rename it over `path`, fsync the directory. On error the
/// temporary file is removed and `path` is untouched.
///
/// A `path` that is a symbolic link is followed: the file it points to is
/// replaced and the link is kept.
///
/// This alone does not stop two writers from overwriting each other; a
/// keychain shared by several writers goes through [`FileStore`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let resolved = follow_link(path);
    let path = resolved.as_path();
    let dir = parent_dir(path);
    let name = file_name(path)?;
    let mut rnd = [0u8; 8];
    crate::aead::fill_random(&mut rnd)?;
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{:016x}",
        std::process::id(),
        u64::from_le_bytes(rnd)
    ));
    let result = (|| {
        let mut f = create_private(&tmp, true)?;
        f.write_all(bytes)
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        f.sync_all()
            .map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
        drop(f);
        fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("renaming onto {}", path.display()), e))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(&dir) {
            d.sync_all()
                .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `path`, or where it points if it is a symbolic link (a dangling link
/// stays as it is).
fn follow_link(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::invalid(format!("{} does not name a file", path.display())))
}

fn create_private(path: &Path, new: bool) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    if new {
        opts.create_new(true);
    } else {
        opts.create(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))
}

fn digest(bytes: &[u8]) -> Revision {
    let d = Sha256::digest(bytes);
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    Revision(u128::from_be_bytes(first))
}

/// What `stat` says about the file: enough to notice a replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = fs::metadata(path)?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    let mtime_ns = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(-1);
    Ok(Stamp {
        ino,
        len: m.len(),
        mtime_ns,
    })
}

/// A keychain kept in a file (see the module docs).
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    location: String,
    /// The stamp of the file when it was last read or written, with its
    /// revision.
    seen: Mutex<Option<(Stamp, Revision)>>,
    /// Whether leftovers of killed writers were looked for.
    swept: AtomicBool,
    /// The locked lock file while a [`Store::lock_for_update`] guard of
    /// this store lives (a second lock on another descriptor of the same
    /// file would wait for the first: `flock` locks belong to open files,
    /// not processes).
    held: Mutex<Option<File>>,
}

/// Releases the writers' lock of a [`FileStore`] when dropped.
struct Held<'a>(&'a FileStore);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Closing the file releases the flock.
        drop(lock(&self.0.held).take());
    }
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// The store at `path`. Nothing is written until the first change.
    ///
    /// A `path` that is a symbolic link is followed, once, here: the
    /// keychain is read and replaced where the link points (and the lock
    /// file lives beside it), and the link itself is left alone. Without
    /// this, the first save would replace the link with a regular file.
    pub fn new(path: PathBuf) -> FileStore {
        let path = follow_link(&path);
        let dir = parent_dir(&path);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        FileStore {
            lock_path: dir.join(format!(".{name}.lock")),
            location: path.display().to_string(),
            path,
            seen: Mutex::new(None),
            swept: AtomicBool::new(false),
            held: Mutex::new(None),
        }
    }

    /// Removes temporary files that writers killed mid-save left behind
    /// (`.NAME.tmp-PID-RAND` whose PID no longer runs). Best effort, once
    /// per store; a live writer's file is never touched.
    fn sweep_leftovers(&self) {
        if self.swept.swap(true, Ordering::Relaxed) {
            return;
        }
        let Some(name) = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
        else {
            return;
        };
        let prefix = format!(".{name}.tmp-");
        let Ok(entries) = fs::read_dir(parent_dir(&self.path)) else {
            return;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !process_runs(pid) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The keychain file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<Option<Versioned>> {
        // Stamp before reading: if the file is replaced in between, the
        // stamp is the older one and the next `changed` says so.
        let st = match stamp(&self.path) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(format!("reading {}", self.location), e)),
        };
        match fs::read(&self.path) {
            Ok(bytes) => {
                let revision = digest(&bytes);
                if let Some(st) = st {
                    *lock(&self.seen) = Some((st, revision));
                }
                Ok(Some(Versioned { bytes, revision }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", self.location), e)),
        }
    }

    /// Takes the writers' lock, waiting at most [`LOCK_TIMEOUT`].
    fn lock_writers(&self) -> Result<File> {
        let f = create_private(&self.lock_path, false)?;
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let mut pause = Duration::from_micros(200);
        loop {
            match f.try_lock() {
                Ok(()) => return Ok(f),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => {
                    return Err(Error::io(
                        format!("locking {}", self.lock_path.display()),
                        e,
                    ))
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::unavailable(format!(
                    "another writer has held the lock on {} for over {} s",
                    self.location,
                    LOCK_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// Whether process `pid` exists. Where that cannot be known (no `/proc`),
/// it is assumed to run, so nothing is removed.
fn process_runs(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

impl Store for FileStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn load(&self) -> Result<Option<Versioned>> {
        self.sweep_leftovers();
        self.read()
    }

    fn compare_and_swap(&self, expected: Option<Revision>, bytes: &[u8]) -> Result<Swap> {
        // A path that names no file (`""`, `dir/..`) is refused before a
        // lock file is made for it.
        file_name(&self.path)?;
        // Under a `lock_for_update` guard of this store the lock is held
        // already.
        let _lock = if lock(&self.held).is_some() {
            None
        } else {
            Some(self.lock_writers()?)
        };
        let current = self.read()?.map(|v| v.revision);
        if current != expected {
            return Ok(Swap::Conflict);
        }
        write_atomic(&self.path, bytes)?;
        let revision = digest(bytes);
        if let Ok(st) = stamp(&self.path) {
            *lock(&self.seen) = Some((st, revision));
        }
        Ok(Swap::Written(revision))
        // The lock is released when `_lock` closes, after the rename is
        // durable.
    }

    fn lock_for_update(&self) -> Result<Option<super::UpdateGuard<'_>>> {
        file_name(&self.path)?;
        let f = self.lock_writers()?;
        *lock(&self.held) = Some(f);
        Ok(Some(super::UpdateGuard::new(Held(self))))
    }

    fn changed(&self, since: Revision) -> Result<bool> {
        let st = match stamp(&self.path) {
            Ok(s) => s,
            // A keychain file that vanished has changed; the reload says how.
            Err(_) => return Ok(true),
        };
        if let Some((seen, rev)) = *lock(&self.seen) {
            if seen == st {
                return Ok(rev != since);
            }
        }
        Ok(self.read()?.is_none_or(|v| v.revision != since))
    }
}
