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

/// A root of the caller's own (what the C, Go and Python bindings build
/// from callbacks, an interface or a protocol), through `CustomRoot`: here
/// a keychain standing in for a KMS client.
mod custom_root {
    use super::conformance::{self, Backend};
    use keystrata::root::CustomRoot;
    use keystrata::{Envelope, KeyManager, Keychain, SecretBytes};

    struct MyKms(Keychain);

    impl KeyManager for MyKms {
        fn provider(&self) -> &str {
            "my-kms"
        }
        fn wrap_key(&self, key: &[u8], ctx: &[u8]) -> keystrata::Result<Envelope> {
            self.0.wrap_key(key, ctx)
        }
        fn unwrap_key(&self, env: &Envelope, ctx: &[u8]) -> keystrata::Result<SecretBytes> {
            let mut env = env.clone();
            env.provider = "keystrata".into();
            self.0.unwrap_key(&env, ctx)
        }
        fn active_key_version(&self) -> keystrata::Result<u32> {
            self.0.active_key_version()
        }
        fn health_check(&self) -> keystrata::Result<()> {
            self.0.health_check()
        }
        fn close(&self) -> keystrata::Result<()> {
            self.0.close()
        }
    }

    fn backend() -> Backend {
        let kms = MyKms(Keychain::generate().expect("generate"));
        Backend::local(CustomRoot::new(kms).expect("custom root"))
    }
    conformance::suite!(backend);
}
