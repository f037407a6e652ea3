//! Differential test of the two AES-256-GCM engines on random inputs: AWS-LC
//! and RustCrypto must produce the same bytes, open each other's output,
//! and refuse the same tampered inputs. Runs only with both engines
//! compiled (`cargo test --all-features`).
#![cfg(all(feature = "aws-lc", feature = "rustcrypto"))]

use keystrata::aead::{AeadEngine, AwsLc, RustCrypto, KEY_LEN, NONCE_LEN, TAG_LEN};
use keystrata::ErrorKind;
use proptest::prelude::*;

fn seal<E: AeadEngine>(e: &E, nonce: &[u8; NONCE_LEN], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; pt.len() + TAG_LEN];
    e.seal_into(nonce, aad, pt, &mut out).expect("seal_into");
    out
}

fn open<E: AeadEngine>(
    e: &E,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>, ErrorKind> {
    let mut out = vec![0u8; ct.len().saturating_sub(TAG_LEN)];
    e.open_into(nonce, aad, ct, &mut out)
        .map(|()| out)
        .map_err(|x| x.kind())
}

fn check_one(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], pt: &[u8], flip: usize) {
    let a = AwsLc::new(key);
    let r = RustCrypto::new(key);
    let ca = seal(&a, nonce, aad, pt);
    let cr = seal(&r, nonce, aad, pt);
    assert_eq!(ca, cr, "engines produce different ciphertexts");
    assert_eq!(open(&a, nonce, aad, &cr).as_deref(), Ok(pt));
    assert_eq!(open(&r, nonce, aad, &ca).as_deref(), Ok(pt));

    // One flipped bit anywhere in ct ‖ tag: both refuse, with Authentication.
    let mut bad = ca.clone();
    let i = flip % bad.len();
    bad[i] ^= 1 << (flip % 8);
    assert_eq!(open(&a, nonce, aad, &bad), Err(ErrorKind::Authentication));
    assert_eq!(open(&r, nonce, aad, &bad), Err(ErrorKind::Authentication));

    // Changed aad: both refuse.
    let mut aad2 = aad.to_vec();
    aad2.push(0);
    assert_eq!(open(&a, nonce, &aad2, &ca), Err(ErrorKind::Authentication));
    assert_eq!(open(&r, nonce, &aad2, &ca), Err(ErrorKind::Authentication));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn engines_agree_on_random_inputs(
        key in any::<[u8; KEY_LEN]>(),
        nonce in any::<[u8; NONCE_LEN]>(),
        aad in proptest::collection::vec(any::<u8>(), 0..80),
        pt in proptest::collection::vec(any::<u8>(), 0..600),
        flip in any::<usize>(),
    ) {
        check_one(&key, &nonce, &aad, &pt, flip);
    }
}

/// Every length around the 16-byte block boundaries and a few large ones,
/// with simple pseudo-random contents.
#[test]
fn engines_agree_on_every_small_length_and_some_large() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u8
    };
    let mut lens: Vec<usize> = (0..=130).collect();
    lens.extend([255, 256, 257, 1023, 4096, 65_535, 65_536, 100 * 1024 + 3]);
    let mut n = 0;
    for len in lens {
        let key: [u8; KEY_LEN] = std::array::from_fn(|_| next());
        let nonce: [u8; NONCE_LEN] = std::array::from_fn(|_| next());
        let aad: Vec<u8> = (0..len % 37).map(|_| next()).collect();
        let pt: Vec<u8> = (0..len).map(|_| next()).collect();
        check_one(&key, &nonce, &aad, &pt, usize::from(next()) * 7919 + len);
        n += 1;
    }
    assert_eq!(n, 131 + 8);
}
