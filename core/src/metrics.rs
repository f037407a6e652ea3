//! Prometheus metrics of a keychain: the operation counters, derivations
//! by origin, errors by kind, rotations by scope and latency histograms,
//! as the text exposition format ([`Keychain::metrics_text`]).
//!
//! The names are those of the Rust KMS crate card (`kms_seal_total{ok}`,
//! `kms_unseal_total{ok}`, `kms_derivations_total{origin}`,
//! `kms_errors_total{kind}`, `kms_rotations_total{scope}`), with the other
//! operations named alike, and one histogram,
//! `kms_operation_duration_seconds{op}`. docs/METRICS.md lists them all.
//!
//! What a call costs: the counters are striped relaxed atomics (as
//! before). Timing a call reads the clock twice (about 37 ns here, a
//! quarter of a 64-byte seal), so the fast symmetric operations (seal,
//! unseal, encrypt, decrypt, wrap, unwrap) are timed one call in
//! [`SAMPLE_EVERY`] on each thread; the others (derive, sign, verify,
//! rewrap) every call. Sampling leaves quantiles and the mean as they
//! are; the exact number of calls is the `_total` counter, not the
//! histogram's `_count`.
//!
//! [`Keychain::metrics_text`]: crate::Keychain::metrics_text

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Instant;

use crate::error::ErrorKind;
use crate::events::{counter_shard, Counters, COUNTER_SHARDS};

/// The fast operations are timed once in this many calls on each thread.
pub const SAMPLE_EVERY: u32 = 16;

/// How many distinct origins `kms_derivations_total` names; the
/// derivations of any origin after those are counted under
/// [`OTHER_ORIGINS`] (a label per origin must not grow without bound).
pub const MAX_ORIGINS: usize = 64;

/// The `origin` label of derivations beyond [`MAX_ORIGINS`] origins, and
/// of origins that are not short printable text.
pub const OTHER_ORIGINS: &str = "_other";

/// The longest origin shown as its own label value (bytes).
const MAX_ORIGIN_LABEL: usize = 128;

/// Upper bounds of the latency buckets, in seconds (and `+Inf`).
const BUCKETS: [f64; 22] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The same bounds in nanoseconds, for the hot path.
const BUCKETS_NS: [u64; 22] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// An operation with a latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Seal,
    Unseal,
    Encrypt,
    Decrypt,
    Wrap,
    Unwrap,
    Derive,
    Sign,
    Verify,
    Rewrap,
}

impl Op {
    const ALL: [Op; 10] = [
        Op::Seal,
        Op::Unseal,
        Op::Encrypt,
        Op::Decrypt,
        Op::Wrap,
        Op::Unwrap,
        Op::Derive,
        Op::Sign,
        Op::Verify,
        Op::Rewrap,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::Seal => "seal",
            Op::Unseal => "unseal",
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::Wrap => "wrap",
            Op::Unwrap => "unwrap",
            Op::Derive => "derive",
            Op::Sign => "sign",
            Op::Verify => "verify",
            Op::Rewrap => "rewrap",
        }
    }

    /// Whether a call is fast enough that timing every one would cost a
    /// noticeable share of it.
    fn sampled(self) -> bool {
        matches!(
            self,
            Op::Seal | Op::Unseal | Op::Encrypt | Op::Decrypt | Op::Wrap | Op::Unwrap
        )
    }
}

/// When a timed call started (`None`: this call is not timed).
#[derive(Clone, Copy)]
pub(crate) struct Started(Option<(Op, Instant)>);

/// Slots per operation in a stripe: the buckets (not cumulative), `+Inf`,
/// the sum in nanoseconds, the count.
const SLOTS: usize = BUCKETS.len() + 3;

/// One stripe of the histograms, alone on its cache lines.
#[repr(align(128))]
struct Stripe([[AtomicU64; SLOTS]; Op::ALL.len()]);

/// The latency histograms of one keychain, striped like the counters.
pub(crate) struct Latency {
    stripes: Box<[Stripe; COUNTER_SHARDS]>,
}

impl Default for Latency {
    fn default() -> Latency {
        Latency {
            stripes: Box::new(std::array::from_fn(|_| {
                Stripe(std::array::from_fn(|_| {
                    std::array::from_fn(|_| AtomicU64::new(0))
                }))
            })),
        }
    }
}

impl Latency {
    /// Starts timing a call of `op` (or not: see [`SAMPLE_EVERY`]).
    #[inline]
    pub(crate) fn start(&self, op: Op) -> Started {
        if op.sampled() {
            thread_local! {
                static TICK: Cell<u32> = const { Cell::new(0) };
            }
            let skip = TICK.with(|t| {
                let n = t.get();
                t.set(n.wrapping_add(1));
                n % SAMPLE_EVERY != 0
            });
            if skip {
                return Started(None);
            }
        }
        Started(Some((op, Instant::now())))
    }

    /// Ends a call [`start`](Self::start) began.
    #[inline]
    pub(crate) fn observe(&self, started: Started) {
        let Some((op, at)) = started.0 else { return };
        let ns = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_NS.partition_point(|&b| b < ns);
        let slots = &self.stripes[counter_shard()].0[op as usize];
        slots[bucket].fetch_add(1, Ordering::Relaxed);
        slots[SLOTS - 2].fetch_add(ns, Ordering::Relaxed);
        slots[SLOTS - 1].fetch_add(1, Ordering::Relaxed);
    }

    /// The stripes summed: per op, the buckets, `+Inf`, sum (ns), count.
    fn snapshot(&self) -> [[u64; SLOTS]; Op::ALL.len()] {
        let mut out = [[0u64; SLOTS]; Op::ALL.len()];
        for stripe in self.stripes.iter() {
            for (o, slots) in out.iter_mut().zip(stripe.0.iter()) {
                for (v, s) in o.iter_mut().zip(slots.iter()) {
                    *v = v.wrapping_add(s.load(Ordering::Relaxed));
                }
            }
        }
        out
    }
}

/// Successful derivations by origin (at most [`MAX_ORIGINS`] labels).
#[derive(Default)]
pub(crate) struct Origins {
    named: RwLock<HashMap<Box<[u8]>, AtomicU64>>,
    other: AtomicU64,
}

impl Origins {
    /// Counts a derivation for `origin` (`None`: a derivation with no
    /// origin, `derive(info)`, labelled `origin=""`).
    pub(crate) fn count(&self, origin: Option<&[u8]>) {
        let origin = origin.unwrap_or_default();
        if origin_label(origin).is_none() {
            self.other.fetch_add(1, Ordering::Relaxed);
            return;
        }
        {
            let named = self.named.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = named.get(origin) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut named = self.named.write().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = named.get(origin) {
            c.fetch_add(1, Ordering::Relaxed);
        } else if named.len() < MAX_ORIGINS {
            named.insert(origin.into(), AtomicU64::new(1));
        } else {
            self.other.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (label value, count), sorted by label.
    fn snapshot(&self) -> Vec<(String, u64)> {
        let named = self.named.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, u64)> = named
            .iter()
            .filter_map(|(k, v)| Some((origin_label(k)?.to_owned(), v.load(Ordering::Relaxed))))
            .collect();
        let other = self.other.load(Ordering::Relaxed);
        if other > 0 {
            out.push((OTHER_ORIGINS.to_owned(), other));
        }
        out.sort();
        out
    }
}

/// An origin as a label value: printable ASCII of at most 128 bytes that
/// is not [`OTHER_ORIGINS`]; `None` otherwise (counted as `_other`).
fn origin_label(origin: &[u8]) -> Option<&str> {
    if origin.len() > MAX_ORIGIN_LABEL
        || !origin.iter().all(|b| (0x20..0x7f).contains(b))
        || origin == OTHER_ORIGINS.as_bytes()
    {
        return None;
    }
    std::str::from_utf8(origin).ok()
}

/// Rotations by scope, indexed like [`SCOPES`].
pub(crate) type Rotations = [u64; 4];

/// The `scope` label values of `kms_rotations_total`: the purpose of the
/// key that became primary.
pub(crate) const SCOPES: [&str; 4] = ["encrypt", "derive", "sign", "stream"];

/// Everything [`render`] writes, read at one moment (each counter is read
/// once; counters are not read atomically together).
pub(crate) struct Snapshot {
    pub(crate) counters: Counters,
    pub(crate) seal_failed: u64,
    pub(crate) encrypt_failed: u64,
    pub(crate) wrap_failed: u64,
    pub(crate) sign_failed: u64,
    pub(crate) rewrap_ok: u64,
    pub(crate) rewrap_failed: u64,
    pub(crate) rotations: Rotations,
}

/// The Prometheus text exposition (format 0.0.4) of a keychain's metrics.
pub(crate) fn render(s: &Snapshot, latency: &Latency, origins: &Origins) -> String {
    let c = &s.counters;
    let mut out = String::with_capacity(8192);
    let outcomes: [(&str, &str, u64, u64); 9] = [
        ("kms_seal_total", "Seal calls", c.seal, s.seal_failed),
        (
            "kms_unseal_total",
            "Unseal calls",
            c.unseal_ok,
            c.unseal_failed,
        ),
        (
            "kms_encrypt_total",
            "Envelope-encrypt calls",
            c.encrypt,
            s.encrypt_failed,
        ),
        (
            "kms_decrypt_total",
            "Envelope-decrypt calls",
            c.decrypt_ok,
            c.decrypt_failed,
        ),
        ("kms_wrap_total", "Key wraps", c.wrap, s.wrap_failed),
        (
            "kms_unwrap_total",
            "Key unwraps",
            c.unwrap_ok,
            c.unwrap_failed,
        ),
        ("kms_sign_total", "Signatures", c.sign, s.sign_failed),
        (
            "kms_verify_total",
            "Signature verifications",
            c.verify_ok,
            c.verify_failed,
        ),
        (
            "kms_rewrap_total",
            "Rewraps under the current primary",
            s.rewrap_ok,
            s.rewrap_failed,
        ),
    ];
    for (name, help, ok, failed) in outcomes {
        header(&mut out, name, &format!("{help}, by outcome."), "counter");
        let _ = writeln!(out, "{name}{{ok=\"true\"}} {ok}");
        let _ = writeln!(out, "{name}{{ok=\"false\"}} {failed}");
    }

    header(
        &mut out,
        "kms_derivations_total",
        "Successful key derivations, by origin (\"\" for derive(info); \"_other\" past 64 origins).",
        "counter",
    );
    let by_origin = origins.snapshot();
    if by_origin.is_empty() {
        let _ = writeln!(out, "kms_derivations_total{{origin=\"\"}} 0");
    }
    for (origin, n) in by_origin {
        let _ = writeln!(
            out,
            "kms_derivations_total{{origin=\"{}\"}} {n}",
            escape(&origin)
        );
    }

    header(
        &mut out,
        "kms_errors_total",
        "Errors returned by keychain calls, by kind.",
        "counter",
    );
    for kind in ErrorKind::ALL {
        let _ = writeln!(
            out,
            "kms_errors_total{{kind=\"{}\"}} {}",
            kind.name(),
            c.errors_of(kind)
        );
    }

    header(
        &mut out,
        "kms_rotations_total",
        "Rotations (rotate calls and automatic rotations), by the purpose of the new primary.",
        "counter",
    );
    for (scope, n) in SCOPES.iter().zip(s.rotations) {
        let _ = writeln!(out, "kms_rotations_total{{scope=\"{scope}\"}} {n}");
    }

    header(
        &mut out,
        "kms_operation_duration_seconds",
        "Time spent in keychain calls, by operation (seal, unseal, encrypt, decrypt, wrap and \
         unwrap: one call in 16 per thread).",
        "histogram",
    );
    let hist = latency.snapshot();
    for (op, slots) in Op::ALL.iter().zip(hist.iter()) {
        let name = op.name();
        let mut cumulative = 0u64;
        for (bound, n) in BUCKETS.iter().zip(slots.iter()) {
            cumulative = cumulative.wrapping_add(*n);
            let _ = writeln!(
                out,
                "kms_operation_duration_seconds_bucket{{op=\"{name}\",le=\"{bound:?}\"}} {cumulative}"
            );
        }
        let count = slots[SLOTS - 1];
        let _ = writeln!(
            out,
            "kms_operation_duration_seconds_bucket{{op=\"{name}\",le=\"+Inf\"}} {count}"
        );
        let sum = slots[SLOTS - 2] as f64 / 1e9;
        let _ = writeln!(
            out,
            "kms_operation_duration_seconds_sum{{op=\"{name}\"}} {sum:?}"
        );
        let _ = writeln!(
            out,
            "kms_operation_duration_seconds_count{{op=\"{name}\"}} {count}"
        );
    }
    out
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped as the text format wants (`\`, `"`, newline).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_agree() {
        for (s, ns) in BUCKETS.iter().zip(BUCKETS_NS) {
            assert_eq!((s * 1e9).round() as u64, ns);
        }
        assert!(BUCKETS_NS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn origins_are_capped_and_printable() {
        let o = Origins::default();
        o.count(Some(b"api.example.com"));
        o.count(Some(b"api.example.com"));
        o.count(None);
        o.count(Some(b"a\"b\\c"));
        o.count(Some(b"bin\x00ary"));
        o.count(Some(&[b'x'; 129]));
        o.count(Some(b"_other"));
        for i in 0..100 {
            o.count(Some(format!("o{i}").as_bytes()));
        }
        let snap = o.snapshot();
        assert_eq!(snap.len(), MAX_ORIGINS + 1);
        let get = |k: &str| snap.iter().find(|(l, _)| l == k).map(|(_, n)| *n);
        assert_eq!(get("api.example.com"), Some(2));
        assert_eq!(get(""), Some(1));
        assert_eq!(get("a\"b\\c"), Some(1));
        // 3 unprintable/long/reserved, and the origins past the cap.
        let named: u64 = snap
            .iter()
            .filter(|(l, _)| l != OTHER_ORIGINS)
            .map(|(_, n)| *n)
            .sum();
        assert_eq!(named + get(OTHER_ORIGINS).unwrap_or(0), 2 + 1 + 1 + 3 + 100);
        assert_eq!(
            get(OTHER_ORIGINS),
            Some(3 + (100 - (MAX_ORIGINS as u64 - 3)))
        );
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn observations_land_in_their_bucket() {
        let l = Latency::default();
        let t = l.start(Op::Sign);
        l.observe(t);
        // A sampled op is timed on the first call of each 16.
        let timed = (0..SAMPLE_EVERY * 4)
            .filter(|_| {
                let t = l.start(Op::Seal);
                let timed = t.0.is_some();
                l.observe(t);
                timed
            })
            .count();
        assert_eq!(timed, 4);
        let snap = l.snapshot();
        assert_eq!(snap[Op::Sign as usize][SLOTS - 1], 1);
        assert_eq!(snap[Op::Seal as usize][SLOTS - 1], 4);
        let in_buckets: u64 = snap[Op::Seal as usize][..SLOTS - 2].iter().sum();
        assert_eq!(in_buckets, 4);
    }
}
