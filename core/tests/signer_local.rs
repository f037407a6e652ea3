//! The Signer conformance suite over the keychain's signing keys, one
//! module per algorithm. The PKCS#11 signer runs it in
//! conformance_pkcs11.rs against SoftHSM2.
#![cfg(feature = "aws-lc")]

mod signer_conformance;

macro_rules! keychain_signer {
    ($name:ident, $alg:expr) => {
        mod $name {
            use keystrata::sign::Signer;
            use keystrata::Keychain;

            fn make() -> Box<dyn Signer> {
                // Leaked: the signer borrows the keychain for the test's life.
                let kc: &'static Keychain = Box::leak(Box::new(Keychain::generate().unwrap()));
                kc.rotate_signing($alg).unwrap();
                Box::new(kc.signer())
            }
            crate::signer_conformance::signer_suite!(make);
        }
    };
}

keychain_signer!(ed25519, keystrata::Algorithm::Ed25519);
keychain_signer!(ecdsa_p256, keystrata::Algorithm::EcdsaP256);
keychain_signer!(ecdsa_secp256k1, keystrata::Algorithm::EcdsaSecp256k1);
