//! Streaming encryption through the keychain: round trips, random access,
//! key rotation and trial, save/load, errors; and Tink's streaming AEAD both
//! ways with each Tink peer (Google Tink for Python, tests/tink/streaming.py;
//! tink-go, tests/tink/go) and the committed vectors (tests/vectors/stream.json).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::Command;

use keystrata::stream::error_of;
use keystrata::{AgeRoot, ErrorKind, Keychain, Purpose, StreamFormat};

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((7 * i + 3) % 251) as u8).collect()
}

fn encrypt(kc: &Keychain, pt: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut w = kc.encrypting_writer(Vec::new(), aad).unwrap();
    for c in pt.chunks(70_001) {
        w.write_all(c).unwrap();
    }
    w.finish().unwrap()
}

fn decrypt(kc: &Keychain, ct: &[u8], aad: &[u8]) -> keystrata::Result<Vec<u8>> {
    let mut r = kc.decrypting_reader(ct, aad)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(error_of)?;
    Ok(out)
}

#[test]
fn streams_round_trip_and_survive_rotation_and_save() {
    let kc = Keychain::generate().unwrap();
    assert_eq!(
        kc.encrypting_writer(Vec::new(), b"")
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::UnknownKey)
    );
    let v1 = kc.rotate_streaming(StreamFormat::AesGcmHkdf4Kb).unwrap();
    assert_eq!(
        (v1.purpose, v1.stream_format, v1.primary),
        (Purpose::Stream, Some(StreamFormat::AesGcmHkdf4Kb), true)
    );
    let pt = plaintext(100_000);
    let old = encrypt(&kc, &pt, b"file.bin");
    let v2 = kc.rotate_streaming(StreamFormat::AesGcmHkdf1Mb).unwrap();
    let new = encrypt(&kc, &pt, b"file.bin");
    // Both decrypt: the reader tries every enabled stream key.
    assert_eq!(decrypt(&kc, &old, b"file.bin").unwrap(), pt);
    assert_eq!(decrypt(&kc, &new, b"file.bin").unwrap(), pt);
    let mut r = kc.decrypting_reader(&old[..], b"file.bin").unwrap();
    r.read_exact(&mut [0u8; 10]).unwrap();
    assert_eq!(r.key_id(), Some(v1.key_id));
    // Saved and loaded, the keys and their formats stay.
    let root = AgeRoot::generate();
    let back = Keychain::load(&kc.save(&root).unwrap(), &root).unwrap();
    assert_eq!(back.keys().unwrap(), kc.keys().unwrap());
    assert_eq!(decrypt(&back, &old, b"file.bin").unwrap(), pt);
    // A disabled key decrypts nothing; the wrong aad fails; a stream under no
    // key of this keychain fails.
    kc.disable(v1.key_id).unwrap();
    assert_eq!(
        decrypt(&kc, &old, b"file.bin").unwrap_err().kind(),
        ErrorKind::Authentication
    );
    assert_eq!(
        decrypt(&kc, &new, b"other").unwrap_err().kind(),
        ErrorKind::Authentication
    );
    let other = Keychain::generate().unwrap();
    other.rotate_streaming(StreamFormat::AesGcmHkdf1Mb).unwrap();
    assert_eq!(
        decrypt(&other, &new, b"file.bin").unwrap_err().kind(),
        ErrorKind::Authentication
    );
    assert_eq!(v2.version, 2);
}

#[test]
fn random_access_reads_any_range() {
    let kc = Keychain::generate().unwrap();
    kc.rotate_streaming(StreamFormat::AesGcmHkdf4Kb).unwrap();
    let pt = plaintext(50_000);
    let ct = encrypt(&kc, &pt, b"");
    let mut s = kc
        .seekable_decryptor(std::io::Cursor::new(ct.clone()), b"")
        .unwrap();
    assert_eq!(s.plaintext_len(), 50_000);
    for (off, len) in [
        (0, 10),
        (4039, 3),
        (4040, 4096),
        (20_000, 7_000),
        (49_990, 100),
    ] {
        s.seek(SeekFrom::Start(off)).unwrap();
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while got < len {
            let n = s.read(&mut buf[got..]).unwrap();
            if n == 0 {
                break;
            }
            got += n;
        }
        let end = (off as usize + len).min(pt.len());
        assert_eq!(&buf[..got], &pt[off as usize..end], "off {off}");
    }
    // read_at fills the whole request, across segments, in one call;
    // fewer bytes only at the end.
    for (off, len) in [(0, 50_000), (4039, 8_200), (20_000, 7_000), (49_990, 100)] {
        let mut buf = vec![0u8; len];
        let got = s.read_at(off as u64, &mut buf).unwrap();
        let end = (off + len).min(pt.len());
        assert_eq!(got, end - off, "off {off} len {len}");
        assert_eq!(&buf[..got], &pt[off..end], "off {off}");
    }
    assert_eq!(s.read_at(50_000, &mut [0u8; 10]).unwrap(), 0);
    // A tampered segment fails only where it is read.
    let mut bad = ct.clone();
    bad[3 * 4096 + 10] ^= 1;
    let mut s = kc
        .seekable_decryptor(std::io::Cursor::new(bad), b"")
        .unwrap();
    assert_eq!(s.read_at(0, &mut [0u8; 10]).unwrap(), 10);
    assert_eq!(
        s.read_at(3 * 4080, &mut [0u8; 10]).unwrap_err().kind(),
        ErrorKind::Authentication
    );
}

#[test]
fn push_encryptor_makes_the_same_streams_as_the_writer() {
    let kc = Keychain::generate().unwrap();
    assert_eq!(
        kc.stream_encryptor(b"").err().map(|e| e.kind()),
        Some(ErrorKind::UnknownKey)
    );
    kc.rotate_streaming(StreamFormat::AesGcmHkdf1Mb).unwrap();
    let pt = plaintext(3_300_000);
    for piece in [1 << 20, 3 * (1 << 20) + 1, 10_007] {
        let mut e = kc.stream_encryptor(b"a").unwrap();
        assert_eq!(e.format(), StreamFormat::AesGcmHkdf1Mb);
        let mut ct = Vec::new();
        for c in pt.chunks(piece) {
            let n = e.update_output_len(c.len()).unwrap();
            let mut out = vec![0u8; n];
            assert_eq!(e.update(c, &mut out).unwrap(), n);
            ct.extend_from_slice(&out);
        }
        let mut out = vec![0u8; e.finish_output_len()];
        assert_eq!(e.finish(&mut out).unwrap(), out.len());
        ct.extend_from_slice(&out);
        assert_eq!(
            StreamFormat::AesGcmHkdf1Mb
                .plaintext_len_of(ct.len() as u64)
                .unwrap(),
            pt.len() as u64
        );
        assert_eq!(decrypt(&kc, &ct, b"a").unwrap(), pt, "pieces of {piece}");
        assert_eq!(
            e.update(b"x", &mut [0u8; 64]).unwrap_err().kind(),
            ErrorKind::Unavailable
        );
    }
}

/// Bytes without a whole header are `Format`; a header followed by less
/// than a tag is a stream cut short: `Authentication`, like any other cut
/// (docs/FORMAT.md §13), in every decrypting API.
#[test]
fn short_streams_are_format_without_a_header_else_authentication() {
    let kc = Keychain::generate().unwrap();
    kc.rotate_streaming(StreamFormat::AesGcmHkdf4Kb).unwrap();
    let empty = encrypt(&kc, b"", b"");
    assert_eq!(empty.len(), 56);
    let kinds = |ct: &[u8]| {
        let mut d = kc.stream_decryptor(b"").unwrap();
        let mut out = vec![0u8; ct.len() + 64];
        let push = d
            .update(ct, &mut out)
            .and_then(|_| d.finish(&mut out))
            .unwrap_err()
            .kind();
        let seek = kc
            .seekable_decryptor(std::io::Cursor::new(ct.to_vec()), b"")
            .err()
            .map(|e| e.kind());
        (decrypt(&kc, ct, b"").unwrap_err().kind(), push, seek)
    };
    use ErrorKind::{Authentication as A, Format as F};
    for n in [0, 1, 39] {
        assert_eq!(kinds(&empty[..n]), (F, F, Some(F)), "{n} bytes");
    }
    for n in [40, 41, 55] {
        assert_eq!(kinds(&empty[..n]), (A, A, Some(A)), "{n} bytes");
    }
    // A several-segment stream whose last segment is under a tag.
    let ct = encrypt(&kc, &plaintext(10_000), b"");
    assert_eq!(ct.len(), 2 * 4096 + 1896);
    for keep in [1, 15] {
        assert_eq!(
            kinds(&ct[..2 * 4096 + keep]),
            (A, A, Some(A)),
            "last segment of {keep} bytes"
        );
    }
}

/// A Tink implementation on the other side of the streams: a command taking
/// `gen DIR` and `check DIR`, with the files described in
/// tests/tink/streaming.py's docstring, whose `check` ends with the line
/// `REPORT: N passed, M failed`.
struct Peer {
    /// Names the peer in failures.
    name: &'static str,
    /// The program and its first arguments; `gen DIR` or `check DIR` follow.
    command: fn() -> Command,
    /// What to do when the program is not there.
    install: &'static str,
    /// The prefix of its report line.
    report: &'static str,
    /// How many checks its `check` makes on our 16 streams.
    checks: usize,
}

const PEERS: &[Peer] = &[
    Peer {
        name: "Tink Python (tests/tink/streaming.py)",
        command: tink_python,
        install: "run `bash scripts/setup.sh` (make test does): it makes .venv with Tink",
        report: "tink-streaming",
        checks: 48,
    },
    Peer {
        name: "tink-go (tests/tink/go)",
        command: tink_go,
        install: "install Go 1.26 or later (https://go.dev/doc/install) and put `go` on PATH; \
                  `go run` fetches tink-go (pinned by tests/tink/go/go.sum) on first use",
        report: "tink-go-streaming",
        checks: 112,
    },
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tink_python() -> Command {
    let mut c = Command::new(repo().join(".venv/bin/python"));
    c.arg(repo().join("tests/tink/streaming.py"));
    c
}

fn tink_go() -> Command {
    let mut c = Command::new("go");
    // GOTOOLCHAIN=local: an older go says so instead of fetching a toolchain.
    c.args(["run", "."])
        .current_dir(repo().join("tests/tink/go"))
        .env("GOTOOLCHAIN", "local");
    c
}

/// Runs `peer`'s `cmd DIR`, which must succeed; returns its stdout.
fn run(peer: &Peer, cmd: &str, dir: &std::path::Path) -> String {
    let mut c = (peer.command)();
    let out = match c.arg(cmd).arg(dir).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{}: {} not found: {}",
            peer.name,
            c.get_program().to_string_lossy(),
            peer.install
        ),
        Err(e) => panic!("{}: cannot run {c:?}: {e}", peer.name),
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {cmd}: {}\n{text}{}",
        peer.name,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Each peer's streams decrypt here; ours decrypt in each peer, under its
/// keyset and under our export of it (and, for tink-go, ours spoiled do not).
#[test]
fn tink_reads_ours_and_we_read_tinks() {
    for peer in PEERS {
        both_ways(peer);
    }
}

fn both_ways(peer: &Peer) {
    let dir = tempfile::tempdir().unwrap();
    run(peer, "gen", dir.path());
    let mut checked = 0;
    for name in ["4kb", "1mb"] {
        let json = std::fs::read_to_string(dir.path().join(format!("keyset-{name}.json"))).unwrap();
        let kc = Keychain::import_tink_cleartext(&json)
            .unwrap_or_else(|e| panic!("{}: keyset-{name}.json: {e}", peer.name));
        let primary = kc.primary_for(Purpose::Stream).unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_str().unwrap().to_owned();
            let Some(n) = file
                .strip_prefix(&format!("tink-{name}-"))
                .and_then(|s| s.strip_suffix(".ct"))
            else {
                continue;
            };
            let n: usize = n.parse().unwrap();
            let aad = format!("aad-{n}");
            let ct = std::fs::read(&path).unwrap();
            assert_eq!(
                decrypt(&kc, &ct, aad.as_bytes()).unwrap(),
                plaintext(n),
                "{}: {file}",
                peer.name
            );
            let ours = encrypt(&kc, &plaintext(n), aad.as_bytes());
            std::fs::write(dir.path().join(format!("ks-{name}-{n}.ct")), ours).unwrap();
            checked += 1;
        }
        let export = kc
            .insecure_export_tink_cleartext_for(Purpose::Stream)
            .unwrap();
        std::fs::write(
            dir.path().join(format!("ks-keyset-{name}.json")),
            export.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            Keychain::import_tink_cleartext(&export)
                .unwrap()
                .primary_for(Purpose::Stream)
                .unwrap()
                .key_id,
            primary.key_id
        );
    }
    assert_eq!(checked, 16, "{}: streams from gen", peer.name);
    let report = run(peer, "check", dir.path());
    assert_eq!(
        report.lines().last(),
        Some(format!("{}: {} passed, 0 failed", peer.report, peer.checks).as_str()),
        "{}: {report}",
        peer.name
    );
}

/// The committed vectors (made by Tink): every case decrypts here.
#[test]
fn committed_vectors_decrypt() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/stream.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let kc = Keychain::import_tink_cleartext(doc["keyset_json"].as_str().unwrap()).unwrap();
    let unhex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    let cases = doc["decrypt"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for c in cases {
        let ct = unhex(c["ciphertext_hex"].as_str().unwrap());
        let aad = unhex(c["aad_hex"].as_str().unwrap());
        let n = c["plaintext_len"].as_u64().unwrap() as usize;
        assert_eq!(
            decrypt(&kc, &ct, &aad).unwrap(),
            plaintext(n),
            "{}",
            c["comment"]
        );
        assert_eq!(
            StreamFormat::AesGcmHkdf4Kb
                .plaintext_len_of(ct.len() as u64)
                .unwrap(),
            n as u64
        );
    }
}
