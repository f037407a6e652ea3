#!/usr/bin/env python3
"""`make bench`: builds and runs every benchmark (Rust, Python, Go, C) on
this machine in one go, then writes docs/PERFORMANCE.md.

Each language's program interleaves keystrata with its peers (A B A B,
BENCH_ROUNDS rounds, default 7) and prints JSON lines of samples; this
script takes medians, computes keystrata / peer ratios and checks the
targets of issue 8. Results of the run are also kept in
target/bench/results.jsonl. Needs no network once the peers are installed
(bench/python/setup.sh does that, idempotently).
"""

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "target", "bench")
PY = os.path.join(REPO, ".venv", "bin", "python")
ENV = dict(os.environ, GOTOOLCHAIN="local")
# C and Go link keystrata-static through the uninstalled pkg-config files
# that `make lib` writes. Only their commands get PKG_CONFIG_PATH: cargo
# must not see a new value (aws-lc-sys's build script watches it).
PC_ENV = "PKG_CONFIG_PATH=" + os.path.join(REPO, "target", "release", "pkgconfig")


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, cwd=REPO, env=ENV, text=True, **kw)


def out(cmd):
    try:
        return subprocess.run(cmd, shell=True, cwd=REPO, env=ENV, text=True,
                              capture_output=True).stdout.strip()
    except OSError:
        return ""


def build():
    os.makedirs(OUT, exist_ok=True)
    if os.environ.get("BENCH_NO_BUILD"):  # reuse the binaries of an earlier build
        return
    sh("make --no-print-directory -s lib")
    sh("CARGO_TARGET_DIR=target/bench cargo build --quiet --release --manifest-path bench/rust/Cargo.toml")
    sh(f"cd bench/go && {PC_ENV} go build -o ../../target/bench/go-bench .")
    sh("cc -O2 -std=c11 -Wall -Wextra -Iinclude -o target/bench/c-bench bench/c/bench.c "
       f"$({PC_ENV} pkg-config --cflags --libs keystrata-static) -lssl -lcrypto")
    sh("bash bench/python/setup.sh")


class etcd_cluster:
    """The 3-member etcd cluster of scripts/peers.sh on loopback, for the
    shared-keychain rows; stopped afterwards (with the other peers it
    starts), unless it was already running. Without it those rows are left
    out, not faked."""

    def __enter__(self):
        self.started = False
        if os.environ.get("KS_TEST_ETCD_ENDPOINTS"):
            return self
        peers_dir = os.path.join(OUT, "peers")
        env = dict(ENV, KS_PEERS_DIR=peers_dir)
        r = subprocess.run("bash scripts/peers.sh start", shell=True, cwd=REPO, env=env,
                           text=True, capture_output=True)
        if r.returncode != 0:
            print(f"bench: etcd did not start; the etcd rows are left out:\n{r.stderr[-2000:]}", flush=True)
            return self
        self.started = True
        for line in r.stdout.splitlines():
            m = re.match(r"export (KS_TEST_ETCD_ENDPOINTS)=['\"]?([^'\"]*)", line)
            if m:
                ENV[m.group(1)] = m.group(2)
        return self

    def __exit__(self, *exc):
        if self.started:
            subprocess.run("bash scripts/peers.sh stop", shell=True, cwd=REPO,
                           env=dict(ENV, KS_PEERS_DIR=os.path.join(OUT, "peers")), capture_output=True)
            ENV.pop("KS_TEST_ETCD_ENDPOINTS", None)
        return False


def collect(cmd, label):
    t = time.time()
    print(f"bench: {label} ...", flush=True)
    r = subprocess.run(cmd, shell=True, cwd=REPO, env=ENV, text=True, stdout=subprocess.PIPE, check=True)
    rows = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    print(f"bench: {label} done in {time.time() - t:.0f} s", flush=True)
    return rows


def machine():
    cpu = {}
    for line in open("/proc/cpuinfo"):
        k, _, v = line.partition(":")
        cpu.setdefault(k.strip(), v.strip())
    flags = set(cpu.get("flags", "").split())
    shown = [f for f in ("aes", "vaes", "pclmulqdq", "vpclmulqdq", "avx2", "avx512f", "sha_ni") if f in flags]
    mem = out("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    return {
        "cpu": cpu.get("model name", platform.processor()),
        "cores": os.cpu_count(),
        "flags": " ".join(shown),
        "mem": mem,
        "kernel": platform.release(),
        "libc": " ".join(platform.libc_ver()),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def versions(rows):
    pyv = out(f"{PY} -c \"import importlib.metadata as m; print(' '.join(p+'=='+m.version(p) for p in "
              f"['keystrata','cryptography','tink','aws-encryption-sdk']))\"")
    lock = open(os.path.join(REPO, "bench/rust/Cargo.lock")).read()

    def crate(n):
        m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(n), lock)
        return m.group(1) if m else "?"

    ossl = next((r["impl"] for r in rows if r["case"] == "_version"), "?")
    gomod = open(os.path.join(REPO, "bench/go/go.mod")).read()
    xc = re.search(r"golang.org/x/crypto (v\S+)", gomod)
    return [
        ("rustc", out("rustc --version")),
        ("aws-lc-rs / aws-lc-sys / hkdf", f"{crate('aws-lc-rs')} / {crate('aws-lc-sys')} / {crate('hkdf')}"),
        ("Python", out(f"{PY} -c 'import sys; print(sys.version.split()[0])'") + " — " + pyv),
        ("Go", out("go version") + (f", golang.org/x/crypto {xc.group(1)}" if xc else "")),
        ("C", out("cc --version | head -1") + ", " + ossl),
    ]


def med(rows, lang, case, size, impl):
    for r in rows:
        if (r["lang"], r["case"], r["size"], r["impl"]) == (lang, case, size, impl):
            return statistics.median(r["samples"]) if r["samples"] else None
    return None


GIB = 1 << 30


def fmt_size(n):
    return {64: "64 B", 1024: "1 KiB", 65536: "64 KiB", 1048576: "1 MiB", 32: "32 B",
            GIB: "1 GiB", 10 * GIB: "10 GiB"}.get(n, f"{n} B")


def fmt_time(ns):
    if ns is None:
        return "—"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def fmt_tput(ns, size):
    if ns is None or size < 1024:
        if ns and ns > 1e4:  # fewer than 100,000 calls a second (signatures)
            return f"{1e9 / ns / 1e3:.1f} k/s"
        return f"{1e9 / ns / 1e6:.2f} M/s" if ns else "—"
    return f"{size / ns:.2f} GB/s"


def tables(rows):
    """Markdown: one table per language, a row per (case, size, peer)."""
    md = []
    order = ["seal", "seal_to", "unseal", "encrypt", "encrypt_to", "decrypt", "derive_origin_key", "wrap_key",
             "stream_encrypt", "stream_decrypt", "stream_decrypt_buf", "stream_decrypt_push", "rng_12B"]
    order += [f"{op}_{alg}" for alg in ("ed25519", "ecdsa-p256", "ecdsa-secp256k1")
              for op in ("sign", "verify", "verify_signature")]
    for lang, title in [("rust", "Rust"), ("python", "Python"), ("go", "Go"), ("c", "C")]:
        lrows = [r for r in rows if r["lang"] == lang and r["unit"] == "ns"
                 and not r["case"].endswith("_shared")]
        if not lrows:
            continue
        md += [f"### {title}", "",
               "| case | size | keystrata | peer | peer time | keystrata throughput | peer throughput | keystrata / peer time |",
               "|---|---|---|---|---|---|---|---|"]
        cases = sorted({(r["case"], r["size"]) for r in lrows},
                       key=lambda cs: (order.index(cs[0]) if cs[0] in order else 99, cs[1]))
        for case, size in cases:
            k = med(rows, lang, case, size, "keystrata")
            if k is None:
                for r in lrows:
                    if (r["case"], r["size"]) == (case, size):
                        md.append(f"| {case} | {fmt_size(size)} | — | {r['impl']} | {fmt_time(statistics.median(r['samples']))} | — | — | — |")
                continue
            peers = [r["impl"] for r in lrows if (r["case"], r["size"]) == (case, size) and r["impl"] != "keystrata"]
            if not peers:  # no peer in that language (Go has no secp256k1)
                md.append(f"| {case} | {fmt_size(size)} | {fmt_time(k)} | — | — | {fmt_tput(k, size)} | — | — |")
            for p in peers:
                v = med(rows, lang, case, size, p)
                ratio = f"{k / v:.2f}×" if k and v else "—"
                md.append(f"| {case} | {fmt_size(size)} | {fmt_time(k)} | {p} | {fmt_time(v)} | "
                          f"{fmt_tput(k, size)} | {fmt_tput(v, size)} | {ratio} |")
        md.append("")
    return md


def threads_table(rows):
    md = ["| language | seal size | 1 thread | 2 threads | 2 / 1 |", "|---|---|---|---|---|"]
    for lang in ("rust", "go", "python"):
        for size in (64, 65536):
            a = med(rows, lang, "seal_threads", size, "keystrata-1")
            b = med(rows, lang, "seal_threads", size, "keystrata-2")
            if a and b:
                md.append(f"| {lang} | {fmt_size(size)} | {a / 1e6:.2f} M calls/s | {b / 1e6:.2f} M calls/s | {b / a:.2f}× |")
            c1 = med(rows, lang, "seal_threads", size, "control-1")
            c2 = med(rows, lang, "seal_threads", size, "control-2")
            if c1 and c2:
                md.append(f"| {lang} (control: raw aws-lc-rs seal) | {fmt_size(size)} | {c1 / 1e6:.2f} M calls/s | "
                          f"{c2 / 1e6:.2f} M calls/s | {c2 / c1:.2f}× |")
    return md


def targets(rows):
    T = []

    def time_ratio(name, lang, case, size, peer, limit):
        k, p = med(rows, lang, case, size, "keystrata"), med(rows, lang, case, size, peer)
        if k and p:
            T.append((name, f"≤ {limit}× time", f"{k / p:.2f}× ({fmt_time(k)} vs {fmt_time(p)})", k / p <= limit))

    def tput_ratio(name, lang, case, size, peer, limit):
        k, p = med(rows, lang, case, size, "keystrata"), med(rows, lang, case, size, peer)
        if k and p:
            T.append((name, f"≥ {limit}× throughput", f"{p / k:.2f}× ({fmt_tput(k, size)} vs {fmt_tput(p, size)})", p / k >= limit))

    time_ratio("Python seal 64 B vs cryptography AESGCM.encrypt", "python", "seal", 64, "cryptography", 0.5)
    tput_ratio("Python encrypt 1 MiB vs cryptography AES-GCM", "python", "encrypt", 1048576, "cryptography", 1.0)
    time_ratio("Python derive_origin_key vs cryptography HKDF", "python", "derive_origin_key", 32, "cryptography", 0.25)
    time_ratio("Go Seal 64 B vs crypto/cipher GCM (both allocate)", "go", "seal", 64, "crypto/cipher", 1.5)
    time_ratio("Go SealTo 64 B vs crypto/cipher GCM (both reuse a buffer)", "go", "seal_to", 64, "crypto/cipher", 1.5)
    tput_ratio("Go Encrypt 1 MiB vs crypto/cipher GCM (both allocate)", "go", "encrypt", 1048576, "crypto/cipher", 3)
    tput_ratio("Go EncryptTo 1 MiB vs crypto/cipher GCM (both reuse a buffer)", "go", "encrypt_to", 1048576, "crypto/cipher", 3)
    tput_ratio("Go SealTo 1 MiB vs crypto/cipher GCM (both reuse a buffer)", "go", "seal_to", 1048576, "crypto/cipher", 3)
    tput_ratio("C seal 1 MiB vs OpenSSL EVP (both allocate)", "c", "seal", 1048576, "openssl-evp", 3)
    tput_ratio("C seal_to 1 MiB vs OpenSSL EVP (both reuse a buffer)", "c", "seal_to", 1048576, "openssl-evp", 3)
    tput_ratio("Rust encrypt 1 MiB vs raw aws-lc-rs AES-GCM", "rust", "encrypt", 1048576, "aws-lc-rs", 0.8)
    # Streaming (issue 16): the stream's writer and reader against the
    # AES-GCM work alone (1 MiB one-shot messages), and memory over 10 GiB.
    tput_ratio("Rust streaming encrypt 1 GiB (encrypting_writer) vs raw aws-lc-rs AES-GCM, 1 MiB messages",
               "rust", "stream_encrypt", GIB, "aws-lc-rs", 0.9)
    tput_ratio("Rust streaming decrypt 1 GiB from memory (decrypting_buf_reader) vs raw aws-lc-rs AES-GCM opening the same segments in place",
               "rust", "stream_decrypt_buf", GIB, "aws-lc-rs", 0.9)
    tput_ratio("Rust streaming decrypt 1 GiB through Read (decrypting_reader, one copy out of the source) "
               "vs raw aws-lc-rs AES-GCM opening the same segments in place", "rust", "stream_decrypt", GIB, "aws-lc-rs", 0.9)
    tput_ratio("Rust streaming decrypt 1 GiB through Read (decrypting_reader) vs raw aws-lc-rs AES-GCM "
               "reading the same segments through Read too", "rust", "stream_decrypt", GIB, "aws-lc-rs-read", 0.9)
    tput_ratio("Rust push decryptor 1 GiB in 1 MiB pieces (stream_decryptor, what C and Go run) vs raw aws-lc-rs "
               "AES-GCM opening the same segments in place", "rust", "stream_decrypt_push", GIB, "aws-lc-rs", 0.9)
    rss = {r["size"]: r for r in rows if r["lang"] == "rust" and r["case"] == "stream_rss"}
    if GIB in rss and 10 * GIB in rss:
        small, big = rss[GIB], rss[10 * GIB]
        seg_kib = big.get("segment", 1 << 20) / 1024
        grew = big["samples"][0] - small["samples"][0]
        T.append(("Rust peak RSS streaming 10 GiB through encrypt → decrypt", "O(segment): under one segment more than 1 GiB",
                  f"{big['samples'][0] / 1024:.1f} MiB (1 GiB: {small['samples'][0] / 1024:.1f} MiB; "
                  f"{big.get('before_kib', 0) / 1024:.1f} MiB before streaming)", grew < seg_kib))
    # The ceiling of the 3x targets: AWS-LC's AES-256-GCM itself, sealing
    # 1 MiB in place with no keystrata around it, against each peer.
    eng = med(rows, "rust", "seal_to", 1048576, "aws-lc-rs")
    for lang, peer in (("go", "crypto/cipher"), ("c", "openssl-evp")):
        p = med(rows, lang, "seal_to", 1048576, peer)
        if eng and p:
            T.append((f"(ceiling) raw aws-lc-rs AES-GCM 1 MiB in place vs {peer}, reused buffer", "context",
                      f"{p / eng:.2f}× ({fmt_tput(eng, 1048576)} vs {fmt_tput(p, 1048576)})", None))
    for lang in ("rust", "go", "python"):
        for size in (64, 65536):
            a = med(rows, lang, "seal_threads", size, "keystrata-1")
            b = med(rows, lang, "seal_threads", size, "keystrata-2")
            if a and b:
                T.append((f"{lang} seal {fmt_size(size)}: 2 threads vs 1", "≥ 1.7×", f"{b / a:.2f}×", b / a >= 1.7))
    md = ["| target | goal | this run | met |", "|---|---|---|---|"]
    md += [f"| {n} | {g} | {v} | {'—' if ok is None else 'yes' if ok else '**no**'} |" for n, g, v, ok in T]
    return md


def shared_table(rows):
    """Markdown: seal/encrypt on a keychain shared through a store, and the
    root and store calls per million encryptions (issue 12)."""
    md = ["| case | unbound keychain | shared through | shared | shared / unbound |", "|---|---|---|---|---|"]
    for case in ["seal_shared", "encrypt_shared"]:
        u = med(rows, "rust", case, 64, "unbound")
        for store in ["file", "etcd"]:
            v = med(rows, "rust", case, 64, store)
            if u is None or v is None:
                continue
            md.append(f"| {case.replace('_shared', '')} 64 B | {fmt_time(u)} | {store} | {fmt_time(v)} | {v / u:.2f}× |")
    md += ["", "| store | store calls / 1,000,000 encrypt | root calls / 1,000,000 encrypt | time for the million |", "|---|---|---|---|"]
    for r in rows:
        if r["lang"] == "rust" and r["case"] == "store_calls":
            md.append(f"| {r['impl']} | {r['samples'][0]:.0f} | {r.get('root_calls', '—')} | {r.get('seconds', 0):.2f} s |")
    return md


def stream_section(rows):
    """Markdown: streaming throughput beside each language's peers, and the
    peak memory of streaming 1 and 10 GiB (issue 16)."""
    md = ["| language | case (1 GiB) | keystrata | peer | peer throughput | keystrata / peer throughput |",
          "|---|---|---|---|---|---|"]
    for lang, title in [("rust", "Rust"), ("c", "C"), ("go", "Go"), ("python", "Python")]:
        for case in ("stream_encrypt", "stream_decrypt", "stream_decrypt_buf", "stream_decrypt_push"):
            k = med(rows, lang, case, GIB, "keystrata")
            if k is None:
                continue
            for p in [r["impl"] for r in rows if (r["lang"], r["case"], r["size"]) == (lang, case, GIB)
                      and r["impl"] != "keystrata"]:
                v = med(rows, lang, case, GIB, p)
                ratio = f"{v / k:.2f}×" if k and v else "—"
                md.append(f"| {title} | {case} | {fmt_tput(k, GIB)} | {p} | {fmt_tput(v, GIB)} | {ratio} |")
    md += ["", "| streamed (Rust, encrypt → decrypt, 1 MB format) | peak RSS (VmHWM) | before streaming | time |",
           "|---|---|---|---|"]
    for r in sorted((r for r in rows if r["lang"] == "rust" and r["case"] == "stream_rss"), key=lambda r: r["size"]):
        md.append(f"| {fmt_size(r['size'])} | {r['samples'][0] / 1024:.1f} MiB | {r.get('before_kib', 0) / 1024:.1f} MiB | "
                  f"{r.get('seconds', 0):.1f} s |")
    return md


def write_doc(rows, m, vers, elapsed):
    head = open(os.path.join(REPO, "bench", "PERFORMANCE.head.md")).read()
    tail = open(os.path.join(REPO, "bench", "PERFORMANCE.tail.md")).read()
    rc_k = med(rows, "rust", "root_calls", 0, "keystrata")
    rc_t = med(rows, "python", "root_calls", 0, "tink-envelope")
    md = [head.rstrip(), "",
          f"_Generated by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
          f"in {elapsed / 60:.1f} minutes; {os.environ.get('BENCH_ROUNDS', '7')} interleaved rounds per case, medians._", "",
          "## Machine", "",
          f"- CPU: {m['cpu']} ({m['cores']} cores visible), flags: {m['flags']}",
          f"- Memory: {m['mem']}; kernel {m['kernel']}; {m['libc']}",
          f"- Load average when the run ended: {m['load']} (the machine is shared; see the notes on noise)", "",
          "## Versions", ""]
    md += [f"- {k}: {v}" for k, v in vers]
    md += ["", "## Targets (issue 8)", ""] + targets(rows)
    md += ["", "## Per-operation time and throughput", "",
           "Time per call is the median over rounds; throughput is payload bytes per second "
           "(calls per second below 1 KiB). The ratio is keystrata's time over the peer's: "
           "below 1 keystrata is faster.", ""]
    md += tables(rows)
    md += ["## Streaming: 1 GiB throughput and memory (issue 16)", "",
           "Each language's streaming writer and reader (Tink's 1 MB format, 1 MiB writes and reads) "
           "beside its raw AES-GCM peer over the same bytes as 1 MiB one-shot messages (and, in Python, "
           "Tink's streaming AEAD in the same format). The ratio is keystrata's throughput over the "
           "peer's: 1 is the peer's speed. Rust's `stream_decrypt` is the `Read` adapter "
           "(`decrypting_reader`), which copies each segment out of its source before opening it; "
           "`stream_decrypt_buf` the buffered reader (`decrypting_buf_reader`), which opens each segment "
           "in the source's own buffer, as the peer opens its messages in place; "
           "and `stream_decrypt_push` the push decryptor (`stream_decryptor`), which "
           "C's `stream_decrypt` calls (`ks_stream_decrypt_update`) and Go's reader runs over. "
           "Then the peak memory of one process "
           "streaming generated zeros through the encrypting writer straight into the decryptor, "
           "never to disk.", ""]
    md += stream_section(rows) + [""]
    md += ["## Concurrency: seal throughput on one keychain", ""] + threads_table(rows) + [""]
    md += ["## Calls to the root per 1,000,000 `encrypt` calls (counted, not timed)", "",
           "| implementation | calls to the root / KMS |", "|---|---|",
           f"| keystrata (keychain bound to a file, default policy: usage counts reserved 65,536 at a time) | {rc_k:.0f} |" if rc_k is not None else "| keystrata | — |",
           f"| Tink KmsEnvelopeAead (one remote call per message) | {rc_t:,.0f} |" if rc_t is not None else "| Tink KmsEnvelopeAead | — |",
           ""]
    md += ["## Shared keychains: a file and etcd (Rust, 64 B)", "",
           "The same calls on a keychain opened from a store that a second handle also has open, "
           "beside an unbound keychain; then the calls a shared keychain makes to its store and its root "
           "over a million encryptions (default policy: usage blocks of 65,536; refresh every second). "
           "The etcd row appears when `KS_TEST_ETCD_ENDPOINTS` names a running cluster "
           "(`make bench` starts one with scripts/peers.sh).", ""]
    md += shared_table(rows) + [""]
    md += [tail.rstrip(), ""]
    with open(os.path.join(REPO, "docs", "PERFORMANCE.md"), "w") as f:
        f.write("\n".join(md))


def main():
    t0 = time.time()
    only = sys.argv[1:]  # e.g. `bench/run.py rust go`
    build()
    rows = []
    if not only or "rust" in only:
        with etcd_cluster():
            rows += collect("target/bench/release/keystrata-bench", "rust")
    if not only or "c" in only:
        rows += collect("target/bench/c-bench", "c")
    if not only or "go" in only:
        rows += collect("target/bench/go-bench", "go")
    if not only or "python" in only:
        rows += collect(f"{PY} bench/python/bench.py", "python")
    with open(os.path.join(OUT, "results.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    write_doc(rows, machine(), versions(rows), time.time() - t0)
    print(f"bench: wrote docs/PERFORMANCE.md in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
