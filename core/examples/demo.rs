//! The keystrata story in Rust: a keychain under an age identity, saved,
//! loaded, used to seal, encrypt, wrap and derive, rotated, and still able
//! to read what it wrote before.
//!
//! Run with `make demo` or `cargo run -p keystrata --example demo`.

use age::secrecy::ExposeSecret;
use keystrata::{AgeRoot, Envelope, KeyManager, Keychain};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("keystrata-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let id_path = dir.join("identity.txt");
    let kc_path = dir.join("keychain.age");

    // 1. An age identity protects the keychain at rest.
    let root = AgeRoot::generate();
    std::fs::write(
        &id_path,
        format!(
            "# public key: {}\n{}\n",
            root.recipients()[0],
            root.insecure_identity_strings()[0].expose_secret()
        ),
    )?;
    println!("1. age identity written to {}", id_path.display());

    // 2. Generate a keychain and save it atomically as an age file.
    let kc = Keychain::generate()?;
    kc.save_file(&kc_path, &root)?;
    println!(
        "2. keychain generated (encryption primary {} v{}) and saved to {}",
        kc.primary()?.key_id,
        kc.primary()?.version,
        kc_path.display()
    );

    // 3. Load it back with the identity.
    let root = AgeRoot::new([std::fs::read_to_string(&id_path)?], [] as [&str; 0])?;
    let kc = Keychain::load_file(&kc_path, &root)?;
    println!(
        "3. keychain loaded: {} keys",
        kc.keys().expect("keys").len()
    );

    // 4. Seal a small secret, envelope-encrypt a document, wrap a data key.
    let sealed = kc.seal(b"postgres://billing:hunter2@db/billing", b"service=billing")?;
    println!(
        "4. sealed a secret: {} bytes, Tink AEAD format (prefix {})",
        sealed.len(),
        hex(&sealed[..5])
    );
    let doc = b"Quarterly numbers: up and to the right.".repeat(100);
    let blob = kc.encrypt(&doc, b"doc=q3-report")?;
    println!(
        "5. encrypted a {} byte document with a fresh data key: {} bytes",
        doc.len(),
        blob.len()
    );
    let env = kc.wrap_key(&[0x42; 32], b"bucket/reports/q3.pdf")?;
    let meta = env.to_metadata();
    println!(
        "6. wrapped a data key for object metadata: {} entries, key version {}",
        meta.len(),
        env.key_version
    );

    // 5. Derive a stable per-origin key.
    let origin_key = kc.derive_origin_key("https://app.example", "web-1", 0)?;
    println!("7. derived origin key: {}", hex(origin_key.expose_secret()));

    // 6. Rotate, save, and read everything back.
    let p = kc.rotate()?;
    kc.save_file(&kc_path, &root)?;
    println!("8. rotated: new primary {} v{}; saved", p.key_id, p.version);
    let kc = Keychain::load_file(&kc_path, &root)?;
    assert_eq!(
        kc.unseal(&sealed, b"service=billing")?,
        b"postgres://billing:hunter2@db/billing"
    );
    assert_eq!(kc.decrypt(&blob, b"doc=q3-report")?, doc);
    let dek = kc.unwrap_key(&Envelope::from_metadata(&meta)?, b"bucket/reports/q3.pdf")?;
    assert_eq!(dek.expose_secret(), &[0x42; 32]);
    assert_eq!(
        kc.derive_origin_key("https://app.example", "web-1", 0)?,
        origin_key
    );
    println!("9. after rotation: secret unsealed, document decrypted, key unwrapped, origin key unchanged");

    let tampered = {
        let mut t = sealed.clone();
        let n = t.len();
        t[n - 1] ^= 1;
        t
    };
    println!(
        "10. a tampered ciphertext is refused: {}",
        kc.unseal(&tampered, b"service=billing").unwrap_err()
    );

    println!();
    println!("Try next:");
    println!(
        "  age -d -i {} {}   # the keychain is a plain age file",
        id_path.display(),
        kc_path.display()
    );
    println!("  make test                              # every suite, including Tink interop");
    println!("  docs/FORMAT.md                         # every byte, with worked examples");
    Ok(())
}
