//! The plugin's own metrics, beside the keychain's: requests by method and
//! gRPC status code, their latency, whether the last `Status` probe passed
//! and which key the plugin encrypts with. Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tonic::Code;

/// The three RPCs of the KMS v2 API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Status = 0,
    Encrypt = 1,
    Decrypt = 2,
}

impl Method {
    const ALL: [Method; 3] = [Method::Status, Method::Encrypt, Method::Decrypt];

    fn name(self) -> &'static str {
        match self {
            Method::Status => "Status",
            Method::Encrypt => "Encrypt",
            Method::Decrypt => "Decrypt",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// gRPC status codes are 0 to 16.
const CODES: usize = 17;

/// Upper bounds of the latency buckets, in seconds (and `+Inf`): from a
/// sealed 32-byte key (microseconds) to a root or store that is slow to
/// answer.
const BUCKETS: [f64; 16] = [
    5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

/// Counters and histograms of the RPCs served.
#[derive(Debug, Default)]
pub(crate) struct PluginMetrics {
    requests: [[AtomicU64; CODES]; 3],
    latency: [Histogram; 3],
    healthy: AtomicBool,
    key_id: AtomicU32,
}

impl PluginMetrics {
    pub(crate) fn observe(&self, method: Method, code: Code, took: Duration) {
        let m = method as usize;
        let c = (code as usize).min(CODES - 1);
        self.requests[m][c].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        let h = &self.latency[m];
        h.counts[b].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        h.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub(crate) fn set_healthy(&self, ok: bool) {
        self.healthy.store(ok, Ordering::Relaxed);
    }

    pub(crate) fn set_key_id(&self, key_id: u32) {
        self.key_id.store(key_id, Ordering::Relaxed);
    }

    /// The metrics in the Prometheus text exposition format (0.0.4).
    pub(crate) fn text(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP kms_plugin_requests_total KMS v2 gRPC requests served, by method and gRPC status code.\n\
             # TYPE kms_plugin_requests_total counter"
        );
        for m in Method::ALL {
            for (c, n) in self.requests[m as usize].iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                // Every method's OK series always, the others once seen.
                if n == 0 && c != 0 {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "kms_plugin_requests_total{{method=\"{m}\",code=\"{}\"}} {n}",
                    code_name(c)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP kms_plugin_request_duration_seconds Time to serve a KMS v2 gRPC request, by method.\n\
             # TYPE kms_plugin_request_duration_seconds histogram"
        );
        for m in Method::ALL {
            let h = &self.latency[m as usize];
            let mut cumulative = 0u64;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "kms_plugin_request_duration_seconds_bucket{{method=\"{m}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += h.counts[BUCKETS.len()].load(Ordering::Relaxed);
            let sum = h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "kms_plugin_request_duration_seconds_bucket{{method=\"{m}\",le=\"+Inf\"}} {cumulative}\n\
                 kms_plugin_request_duration_seconds_sum{{method=\"{m}\"}} {sum}\n\
                 kms_plugin_request_duration_seconds_count{{method=\"{m}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP kms_plugin_healthy Whether the last Status probe (a seal and unseal through the keychain) succeeded.\n\
             # TYPE kms_plugin_healthy gauge\n\
             kms_plugin_healthy {}",
            u8::from(self.healthy.load(Ordering::Relaxed))
        );
        let key_id = self.key_id.load(Ordering::Relaxed);
        if key_id != 0 {
            let _ = writeln!(
                out,
                "# HELP kms_plugin_key_info The key_id the plugin last encrypted with (what the apiserver sees).\n\
                 # TYPE kms_plugin_key_info gauge\n\
                 kms_plugin_key_info{{key_id=\"{}{key_id}\"}} 1",
                crate::service::KEY_ID_PREFIX
            );
        }
        out
    }
}

/// gRPC's names of its codes, as grpc-go and Prometheus exporters spell
/// them.
fn code_name(c: usize) -> &'static str {
    const NAMES: [&str; CODES] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES.get(c).copied().unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_counts_and_buckets() {
        let m = PluginMetrics::default();
        m.observe(Method::Encrypt, Code::Ok, Duration::from_micros(30));
        m.observe(Method::Encrypt, Code::Ok, Duration::from_millis(3));
        m.observe(
            Method::Decrypt,
            Code::InvalidArgument,
            Duration::from_secs(20),
        );
        m.set_healthy(true);
        m.set_key_id(42);
        let t = m.text();
        assert!(t.contains("kms_plugin_requests_total{method=\"Encrypt\",code=\"OK\"} 2\n"));
        assert!(t.contains("kms_plugin_requests_total{method=\"Status\",code=\"OK\"} 0\n"));
        assert!(t.contains(
            "kms_plugin_requests_total{method=\"Decrypt\",code=\"InvalidArgument\"} 1\n"
        ));
        assert!(!t.contains("method=\"Encrypt\",code=\"Internal\""));
        assert!(t.contains(
            "kms_plugin_request_duration_seconds_bucket{method=\"Encrypt\",le=\"0.00005\"} 1\n"
        ));
        assert!(t.contains(
            "kms_plugin_request_duration_seconds_bucket{method=\"Encrypt\",le=\"0.005\"} 2\n"
        ));
        assert!(t.contains(
            "kms_plugin_request_duration_seconds_bucket{method=\"Decrypt\",le=\"10\"} 0\n"
        ));
        assert!(t.contains(
            "kms_plugin_request_duration_seconds_bucket{method=\"Decrypt\",le=\"+Inf\"} 1\n"
        ));
        assert!(t.contains("kms_plugin_request_duration_seconds_count{method=\"Decrypt\"} 1\n"));
        assert!(t.contains("kms_plugin_healthy 1\n"));
        assert!(t.contains("kms_plugin_key_info{key_id=\"keystrata-42\"} 1\n"));
        assert_eq!(
            code_name(Code::FailedPrecondition as usize),
            "FailedPrecondition"
        );
        assert_eq!(code_name(Code::Unauthenticated as usize), "Unauthenticated");
    }
}
