//! The session pool: a PKCS#11 session must not be used by two threads at
//! once, so each call borrows a logged-in session (opening one when none
//! is idle) and gives it back; a dead session is replaced and a stale key
//! handle looked up again, once.

use std::sync::atomic::Ordering;

use cryptoki::error::Error as CkError;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

use super::errors::{ck_error, classify, is_stale_key, is_stale_session, Op};
use super::token::open_session;
use super::Inner;
use crate::error::{Error, ErrorKind, Result};
use crate::sync::lock;

/// Idle sessions a root keeps open for later calls; more are opened under
/// load and closed when given back.
pub(super) const MAX_IDLE_SESSIONS: usize = 8;

impl Inner {
    /// Borrows an idle session, or opens (and logs in) a new one.
    pub(super) fn lease(&self) -> Result<Lease<'_>> {
        let idle = lock(&self.idle).pop();
        let session = match idle {
            Some(s) => s,
            None => open_session(&self.module, self.slot, &self.token_label, &self.pin)?,
        };
        Ok(Lease {
            inner: self,
            session: Some(session),
        })
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::unavailable(format!(
                "this {} was closed",
                self.owner
            )))
        } else {
            Ok(())
        }
    }

    /// Finds the key again on a fresh session (a pooled one may be dead).
    pub(super) fn health_check(&self) -> Result<()> {
        self.check_open()?;
        let mut lease = self.lease()?;
        match self.refresh_key(lease.session()?) {
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                // Maybe only this pooled session died: try a fresh one.
                lease.discard();
                drop(lease);
                let lease = self.lease()?;
                self.refresh_key(lease.session()?)
            }
            other => other,
        }
    }

    /// Marks the handle closed and closes its idle sessions (logging this
    /// handle out; the token stays logged in while other handles of the
    /// process keep sessions open).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let sessions = std::mem::take(&mut *lock(&self.idle));
        drop(sessions);
    }

    /// Runs `f` on a borrowed session with the key's handle. A dead session
    /// is replaced and a stale key handle looked up again, once.
    pub(super) fn call<T>(
        &self,
        op: Op,
        f: impl Fn(&Session, ObjectHandle) -> std::result::Result<T, CkError>,
    ) -> Result<T> {
        let mut retried = false;
        loop {
            self.check_open()?;
            let mut lease = self.lease()?;
            let key = *lock(&self.key);
            let err = match f(lease.session()?, key) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let mapped_kind = classify(&err, op);
            if !retried && is_stale_key(&err) {
                retried = true;
                self.refresh_key(lease.session()?)?;
                continue;
            }
            if mapped_kind != ErrorKind::Authentication {
                // Not a clean failure of the operation itself: do not reuse
                // a session in an unknown state.
                lease.discard();
            }
            if !retried && is_stale_session(&err) {
                retried = true;
                continue;
            }
            return Err(ck_error(err, op, &self.token_label));
        }
    }

    /// Looks the key up again (its handle may change when the token is
    /// reinserted) and caches the new handle.
    pub(super) fn refresh_key(&self, session: &Session) -> Result<()> {
        let handle =
            (self.find)(session, &self.token_label, &self.key_label)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::UnknownKey,
                    format!(
                        "no {} labelled '{}' on token '{}' any more",
                        self.key_kind, self.key_label, self.token_label
                    ),
                )
            })?;
        *lock(&self.key) = handle;
        Ok(())
    }
}

/// A session borrowed from a root's pool; given back when dropped, unless
/// discarded or the root was closed meanwhile.
pub(super) struct Lease<'a> {
    inner: &'a Inner,
    session: Option<Session>,
}

impl Lease<'_> {
    pub(super) fn session(&self) -> Result<&Session> {
        self.session
            .as_ref()
            .ok_or_else(|| Error::internal("PKCS#11 session lease used after discard"))
    }

    pub(super) fn discard(&mut self) {
        self.session = None;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if self.inner.closed.load(Ordering::Acquire) {
                return;
            }
            let mut idle = lock(&self.inner.idle);
            if idle.len() < MAX_IDLE_SESSIONS {
                idle.push(s);
            }
        }
    }
}
