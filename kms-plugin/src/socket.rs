//! The unix socket the plugin listens on: parsing `unix:///path`, refusing
//! a path another process serves, removing a stale socket file, binding
//! with the configured mode, and removing the file again on the way out.

use std::fs::{File, Permissions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use keystrata::{Error, ErrorKind, Result};

/// The longest path a unix socket address holds on Linux (`sun_path` is
/// 108 bytes with the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The socket path of a `unix:///absolute/path` endpoint, the form
/// kube-apiserver's `endpoint` takes.
pub(crate) fn parse_endpoint(listen: &str) -> Result<PathBuf> {
    let Some(rest) = listen.strip_prefix("unix://") else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the listen address must be unix:///absolute/path.sock (the form of the \
                 kube-apiserver's endpoint); got {:?}",
                clip(listen)
            ),
        ));
    };
    if rest.starts_with("/@") {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "abstract unix sockets (unix:///@name) are not supported: they have no file \
             permissions, so any process in the network namespace could call the plugin",
        ));
    }
    if !rest.starts_with('/') || rest.len() < 2 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the listen address must name an absolute path, as in unix:///run/kms/plugin.sock; \
                 got {:?}",
                clip(listen)
            ),
        ));
    }
    if rest.contains('\0') || rest.ends_with('/') {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the socket path {:?} is not a file name", clip(rest)),
        ));
    }
    if rest.len() > MAX_SOCKET_PATH {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the socket path is {} bytes; a unix socket path holds at most {MAX_SOCKET_PATH}",
                rest.len()
            ),
        ));
    }
    Ok(PathBuf::from(rest))
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

/// A listening unix socket whose file is removed when this is dropped (or
/// by [`remove`](BoundSocket::remove)), unless another process replaced it
/// in the meantime.
#[derive(Debug)]
pub(crate) struct BoundSocket {
    pub(crate) listener: UnixListener,
    pub(crate) path: PathBuf,
    /// Device and inode of the socket file this process made.
    id: (u64, u64),
    removed: bool,
}

impl BoundSocket {
    /// Binds `path` with permissions `mode`. A socket file at `path` that
    /// a process still serves is an `Unavailable` error; one nobody serves
    /// (left by a process that was killed) is removed; anything else at
    /// `path` (a regular file, a directory, a symbolic link) is an
    /// `InvalidInput` error and is left alone.
    pub(crate) fn bind(path: &Path, mode: u32) -> Result<BoundSocket> {
        if mode & !0o777 != 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("socket mode {mode:#o} has bits beyond 0o777"),
            ));
        }
        remove_if_stale(path)?;
        let listener = bind_with_mode(path, mode).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::AddrInUse {
                // Another process bound it since we looked.
                ErrorKind::Unavailable
            } else {
                ErrorKind::Io
            };
            Error::new(kind, format!("binding the unix socket {}", path.display())).with_source(e)
        })?;
        let meta = std::fs::symlink_metadata(path).map_err(|e| io_error(path, "reading", e))?;
        let mut bound = BoundSocket {
            listener,
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
            removed: false,
        };
        // On Linux the mode set before bind is already in place (see
        // `bind_with_mode`); elsewhere this is when it takes effect.
        if let Err(e) = std::fs::set_permissions(path, Permissions::from_mode(mode)) {
            bound.remove();
            return Err(io_error(path, "setting the permissions of", e));
        }
        Ok(bound)
    }

    /// Removes the socket file, if it is still the one this process made:
    /// no new connection can reach this process after it. Idempotent.
    pub(crate) fn remove(&mut self) {
        if self.removed {
            return;
        }
        self.removed = true;
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.id => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    log::warn!("could not remove {}: {e}", self.path.display());
                }
            }
            // Gone already, or another process's socket now: not ours.
            _ => {}
        }
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        self.remove();
    }
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{what} {}", path.display())).with_source(e)
}

/// Refuses a socket that a process serves and anything that is not a
/// socket; removes a socket file nobody serves.
fn remove_if_stale(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path, "looking at", e)),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} exists and is not a unix socket; not touching it (choose another path or \
                 remove it yourself)",
                path.display()
            ),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "{} is in use: a running process accepts connections on it (another plugin?); \
                 stop it or choose another path",
                path.display()
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            log::info!(
                "removing the stale socket {} (nothing serves it)",
                path.display()
            );
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error(path, "removing the stale socket", e)),
            }
        }
        Err(e) => Err(io_error(path, "checking whether a process serves", e)),
    }
}

/// Creates a unix stream socket, gives it `mode` before binding (Linux
/// gives the socket file the mode of the socket, less the umask, so no
/// process can connect in a window between `bind` and `chmod`), binds and
/// listens. Non-blocking, for tokio.
fn bind_with_mode(path: &Path, mode: u32) -> std::io::Result<UnixListener> {
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    let fd: OwnedFd = socket.into();
    let file = File::from(fd);
    // fchmod of an unbound socket: honoured by Linux; where it is not, the
    // chmod after bind in `BoundSocket::bind` applies the mode.
    if let Err(e) = file.set_permissions(Permissions::from_mode(mode)) {
        log::debug!("fchmod of the unbound socket failed ({e}); relying on chmod after bind");
    }
    let socket = socket2::Socket::from(OwnedFd::from(file));
    socket.set_cloexec(true)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(UnixListener::from(OwnedFd::from(socket)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("unix:///run/kms/p.sock").unwrap(),
            PathBuf::from("/run/kms/p.sock")
        );
        for bad in [
            "",
            "/run/p.sock",
            "unix:/run/p.sock",
            "unix://run/p.sock",
            "unix:///",
            "tcp://127.0.0.1:1",
            "unix:///run/dir/",
        ] {
            let e = parse_endpoint(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}: {e}");
        }
        let e = parse_endpoint("unix:///@abstract").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let long = format!("unix:///{}", "a".repeat(107));
        assert_eq!(
            parse_endpoint(&long).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let fits = format!("unix:///{}", "a".repeat(106));
        assert!(parse_endpoint(&fits).is_ok());
    }

    #[test]
    fn bind_sets_the_mode_refuses_live_and_foreign_files_and_removes_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sock");
        let mut s = BoundSocket::bind(&path, 0o600).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);

        // Live: refused, and the file stays.
        let e = BoundSocket::bind(&path, 0o600).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(path.exists());

        // Stale: a socket file nobody listens on (the listener is closed
        // but the file kept, as after a SIGKILL).
        s.removed = true;
        drop(s);
        assert!(path.exists());
        let s2 = BoundSocket::bind(&path, 0o660).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o660
        );
        drop(s2);
        assert!(!path.exists(), "the socket file is removed on drop");

        // Not a socket: refused and left alone.
        std::fs::write(&path, b"precious").unwrap();
        let e = BoundSocket::bind(&path, 0o600).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");

        assert_eq!(
            BoundSocket::bind(&dir.path().join("x.sock"), 0o1777)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        let e = BoundSocket::bind(&dir.path().join("no/such/dir.sock"), 0o600).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    }

    #[test]
    fn remove_leaves_another_process_socket_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sock");
        let mut first = BoundSocket::bind(&path, 0o600).unwrap();
        // Another instance takes the path over (after a rolling restart
        // removed ours): our removal must not take its socket away.
        std::fs::remove_file(&path).unwrap();
        let second = BoundSocket::bind(&path, 0o600).unwrap();
        first.remove();
        assert!(path.exists());
        drop(second);
        assert!(!path.exists());
    }
}
