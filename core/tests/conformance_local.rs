//! The KeyManager conformance suite against the in-process backends: the
//! keychain itself, the age root and the passphrase root. The PKCS#11 and
//! KMIP roots run the same suite in conformance_pkcs11.rs and
//! conformance_kmip.rs, against SoftHSM2 and PyKMIP.

mod conformance;

mod keychain {
    use super::conformance::{self, Backend};

    fn backend() -> Backend {
        Backend::local(keystrata::Keychain::generate().expect("generate"))
    }
    conformance::suite!(backend);
}

mod age_root {
    use super::conformance::{self, Backend};

    fn backend() -> Backend {
        Backend::local(keystrata::AgeRoot::generate())
    }
    conformance::suite!(backend);
}

mod passphrase_root {
    use super::conformance::{self, Backend};

    fn backend() -> Backend {
        // A low scrypt work factor keeps the suite fast; the format is the same.
        Backend::local(
            keystrata::PassphraseRoot::with_work_factor("correct horse battery staple", 10)
                .expect("passphrase root"),
        )
    }
    conformance::suite!(backend);
}
