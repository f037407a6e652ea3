//! Stream decryption (Tink's AES-GCM-HKDF streaming AEAD): the linear
//! reader and random access over hostile streams, with the keychain of
//! tests/vectors/stream.json (Tink's 4 KB key; its streams are the seeds)
//! plus a fresh 1 MB key. The buffered reader (over the slice, opening
//! segments in place, and over a 7-byte `BufReader`) must agree with the
//! plain one exactly: the same plaintext, or an error of the same kind.
//! Random access must give the same plaintext when both succeed. Every
//! failure is Format or Authentication.
//!
//! Input: `len(aad) ‖ aad ‖ stream`.
#![no_main]

use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::OnceLock;

use keystrata::ErrorKind::*;
use keystrata::{Keychain, StreamFormat};
use keystrata_fuzz::{check_error, split_field, Auth};
use libfuzzer_sys::fuzz_target;

fn keychain() -> &'static Keychain {
    static K: OnceLock<Keychain> = OnceLock::new();
    K.get_or_init(|| {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/vectors/stream.json"))
                .expect("stream.json");
        let kc = Keychain::import_tink_cleartext(doc["keyset_json"].as_str().expect("keyset"))
            .expect("the vector keyset imports");
        kc.add_stream_key(StreamFormat::AesGcmHkdf1Mb)
            .expect("1 MB key");
        kc
    })
}

/// The whole plaintext a reader gives, or its error.
fn read_all(mut r: impl Read) -> keystrata::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.read_to_end(&mut out)
        .map_err(keystrata::stream::error_of)?;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((aad, stream)) = split_field(data) else {
        return;
    };
    let kc = keychain();
    let linear = kc.decrypting_reader(stream, aad).and_then(read_all);
    let buffered = |src: &mut dyn BufRead| kc.decrypting_buf_reader(src, aad).and_then(read_all);
    let in_place = buffered(&mut &stream[..]);
    let small = buffered(&mut BufReader::with_capacity(7, stream));
    for (name, other) in [
        ("in place", &in_place),
        ("through a small BufReader", &small),
    ] {
        match (&linear, other) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "the buffered reader {name} disagrees"),
            (Err(a), Err(b)) => assert_eq!(
                a.kind(),
                b.kind(),
                "the buffered reader {name} fails otherwise"
            ),
            _ => panic!("the buffered reader {name} disagrees on success"),
        }
    }
    let random = kc
        .seekable_decryptor(Cursor::new(stream), aad)
        .and_then(|mut s| {
            let mut out = vec![0u8; s.plaintext_len() as usize];
            let mut at = 0;
            while at < out.len() {
                let n = s.read_at(at as u64, &mut out[at..])?;
                assert!(n > 0, "read_at returned 0 inside the plaintext");
                at += n;
            }
            Ok(out)
        });
    match (&linear, &random) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the two readers disagree"),
        (Err(e), _) | (_, Err(e)) => {
            check_error(
                "stream decrypt",
                e,
                data,
                &[Format, Authentication],
                Auth::AnyMessage,
            );
        }
    }
});
