//! Keychains at rest in files: atomic writes, and the file a bound
//! keychain writes through to.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::at_rest;
use crate::error::{Error, Result};
use crate::keychain::KeySet;
use crate::root::Root;

/// Writes `bytes` to `path` so that a crash at any moment leaves either the
/// old file or the new one: write a temporary file in the same directory,
/// fsync it, rename it over `path`, fsync the directory. On error the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} does not name a file", path.display())))?;
    let mut rnd = [0u8; 8];
    crate::aead::fill_random(&mut rnd)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{:016x}",
        name.to_string_lossy(),
        std::process::id(),
        u64::from_le_bytes(rnd)
    ));
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
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

/// The file a bound keychain writes every change of state to.
pub(crate) struct FileStore {
    path: PathBuf,
    root: Arc<dyn Root>,
}

impl FileStore {
    pub(crate) fn new(path: PathBuf, root: Arc<dyn Root>) -> FileStore {
        FileStore { path, root }
    }

    /// Serializes, protects and atomically writes `set`.
    pub(crate) fn persist(&self, set: &KeySet, reservation: Option<(u32, u64)>) -> Result<()> {
        let json = at_rest::to_json(set, reservation)?;
        let bytes = self.root.protect(&json)?;
        write_atomic(&self.path, &bytes)
    }
}
