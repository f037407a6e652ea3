//! Events and counters: subscriptions, and the bookkeeping every call's
//! outcome goes through (counters, error kinds, `DecryptFailed` and
//! `KeyDerived` events).

use std::sync::Arc;

use super::Keychain;
use crate::error::Result;
use crate::events::{Counter, Counters, Event, EventKind, SubscriptionId};
use crate::key::Purpose;
use crate::metrics::{Op, Started};
use crate::secret::SecretBytes;

impl Keychain {
    /// Registers `callback` for lifecycle events. It runs on the thread that
    /// caused the event, after the change is visible and with no keychain
    /// lock held, so it may call the keychain. A panic in the callback is
    /// contained and does not affect the keychain. `Unavailable` once
    /// closed (close removes every subscription; a later one would never
    /// be called).
    pub fn subscribe(
        &self,
        callback: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Result<SubscriptionId> {
        let id = self.telemetry.subscribe(Arc::new(callback));
        // Checked after adding, so a close racing with this call either
        // removes the subscription or is seen here.
        if let Err(e) = self.live() {
            self.telemetry.unsubscribe(id);
            return Err(e);
        }
        Ok(id)
    }

    /// Removes a subscription. Returns whether it existed: true also for a
    /// subscription [`close`](crate::KeyManager::close) already removed, so
    /// cleanup after close is not an error; false for an ID this keychain
    /// never gave out, or one already unsubscribed while open.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.telemetry.unsubscribe(id)
    }

    /// A snapshot of the operation counters.
    pub fn counters(&self) -> Counters {
        self.telemetry.snapshot()
    }

    #[inline]
    pub(super) fn track<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.telemetry.error(e.kind());
        }
        r
    }

    /// The metrics of this keychain as Prometheus text (format 0.0.4):
    /// calls by outcome, derivations by origin, errors by kind, rotations
    /// by purpose and latency histograms (names and costs:
    /// [`crate::metrics`] and docs/METRICS.md). Readable after close.
    pub fn metrics_text(&self) -> String {
        crate::metrics::render(
            &self.telemetry.metrics(),
            &self.telemetry.latency,
            &self.telemetry.origins,
        )
    }

    /// Starts timing a call of `op` for its latency histogram.
    #[inline]
    pub(crate) fn start(&self, op: Op) -> Started {
        self.telemetry.latency.start(op)
    }

    /// Counts a call's outcome (`ok`, or its failed counter and the error
    /// kind) and ends its timing.
    #[inline]
    pub(crate) fn done<T>(&self, r: Result<T>, ok: Counter, started: Started) -> Result<T> {
        self.telemetry.latency.observe(started);
        match &r {
            Ok(_) => self.telemetry.count(ok),
            Err(e) => {
                if let Some(failed) = ok.failed() {
                    self.telemetry.count(failed);
                }
                self.telemetry.error(e.kind())
            }
        }
        r
    }

    pub(super) fn done_decrypt<T>(
        &self,
        r: Result<T>,
        ok: Counter,
        failed: Counter,
        key_id: Option<u32>,
        started: Started,
    ) -> Result<T> {
        self.telemetry.latency.observe(started);
        match &r {
            Ok(_) => self.telemetry.count(ok),
            Err(e) => {
                self.telemetry.count(failed);
                self.telemetry.error(e.kind());
                if self.telemetry.wants_events() {
                    let set = self.state.load();
                    let key = key_id.and_then(|id| set.position(id)).map(|p| &set.keys[p]);
                    let ev = Event {
                        kind: EventKind::DecryptFailed,
                        key_id,
                        key_version: key.map(|k| k.version),
                        purpose: key.map(|k| k.purpose),
                        automatic: false,
                        error: Some(e.kind()),
                        algorithm: None,
                        digest: None,
                    };
                    self.telemetry.emit(&[ev]);
                }
            }
        }
        r
    }

    pub(super) fn done_derive(
        &self,
        r: Result<(SecretBytes, u32, u32)>,
        origin: Option<&[u8]>,
        started: Started,
    ) -> Result<SecretBytes> {
        self.telemetry.latency.observe(started);
        match r {
            Ok((out, id, version)) => {
                self.telemetry.count(Counter::Derive);
                self.telemetry.origins.count(origin);
                if self.telemetry.wants_events() {
                    self.telemetry.emit(&[Event::key(
                        EventKind::KeyDerived,
                        id,
                        version,
                        Purpose::Derive,
                    )]);
                }
                Ok(out)
            }
            Err(e) => {
                self.telemetry.error(e.kind());
                Err(e)
            }
        }
    }
}
