//! `keystrata keychain new|show|rotate|add|promote|disable|enable|destroy|migrate`.

use keystrata::sign::Algorithm;
use keystrata::store::Swap;
use keystrata::{ErrorKind, KeyInfo, Keychain, Policy, Purpose, StreamFormat};
use serde_json::json;

use crate::cli::{
    AlgorithmArg, Global, KeychainCommand, MigrateArgs, NewArgs, PurposeArg, PurposeArgs,
    StreamFormatArg,
};
use crate::fail::{err, invalid, usage, Failure, Outcome};
use crate::open;
use crate::out::{self, key_json, key_line, policy_json, print_json, print_line};

/// Runs a `keychain` command.
pub fn run(g: &Global, cmd: &KeychainCommand) -> Outcome {
    match cmd {
        KeychainCommand::New(a) => new(g, a),
        KeychainCommand::Show => show(g),
        KeychainCommand::Rotate(a) => rotate_or_add(g, a, true),
        KeychainCommand::Add(a) => rotate_or_add(g, a, false),
        KeychainCommand::Promote { key_id } => {
            let kc = open::keychain(g)?;
            let k = kc.promote(*key_id)?;
            report(g, &k, "promoted")
        }
        KeychainCommand::Disable { key_id } => status(g, *key_id, "disabled", Keychain::disable),
        KeychainCommand::Enable { key_id } => status(g, *key_id, "enabled", Keychain::enable),
        KeychainCommand::Destroy { key_id, yes } => {
            if !yes {
                return Err(usage(format!(
                    "destroying key {key_id} wipes its material for good: every ciphertext under \
                     it becomes unreadable; add --yes to go ahead"
                )));
            }
            status(g, *key_id, "destroyed", Keychain::destroy)
        }
        KeychainCommand::Migrate(a) => migrate(g, a),
    }
}

/// Converts the CLI's algorithm names.
pub fn algorithm(a: AlgorithmArg) -> Algorithm {
    match a {
        AlgorithmArg::Ed25519 => Algorithm::Ed25519,
        AlgorithmArg::EcdsaP256 => Algorithm::EcdsaP256,
        AlgorithmArg::EcdsaSecp256k1 => Algorithm::EcdsaSecp256k1,
    }
}

fn stream_format(f: StreamFormatArg) -> StreamFormat {
    match f {
        StreamFormatArg::OneMb => StreamFormat::AesGcmHkdf1Mb,
        StreamFormatArg::FourKb => StreamFormat::AesGcmHkdf4Kb,
    }
}

fn new(g: &Global, a: &NewArgs) -> Outcome {
    let location = open::location(g)?;
    let root = open::root(g)?;
    let mut policy = Policy::default();
    if let Some(n) = a.max_encryptions {
        policy.max_encryptions_per_key = n;
    }
    if a.max_key_age.is_some() {
        policy.max_key_age_secs = a.max_key_age;
    }
    if let Some(n) = a.usage_block {
        policy.usage_block = n;
    }
    let kc = Keychain::generate_with_policy(policy)?;
    let bytes = kc.save(&*root)?;
    // Written only if the location is empty, atomically: an existing
    // keychain (or any file) is never overwritten, even by a racing `new`.
    let store = open::store(location)?;
    if let Swap::Conflict = store.compare_and_swap(None, &bytes)? {
        return Err(invalid(format!(
            "{location} exists already; not overwriting it (keystrata keychain show, or choose \
             another location)"
        )));
    }
    describe(g, location, &kc, true)
}

fn show(g: &Global) -> Outcome {
    let location = open::location(g)?;
    let kc = open::keychain(g)?;
    describe(g, location, &kc, false)
}

fn describe(g: &Global, location: &str, kc: &Keychain, created: bool) -> Outcome {
    let keys = kc.keys()?;
    let policy = kc.policy()?;
    if g.json {
        let mut v = json!({
            "location": location,
            "policy": policy_json(&policy),
            "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
        });
        if created {
            v["created"] = json!(true);
        }
        print_json(&v)?;
    } else {
        if created {
            out::note(g, &format!("created a keychain at {location}"));
        }
        print_line(&format!("keychain: {location}"))?;
        print_line(&format!("policy:   {}", out::policy_line(&policy)))?;
        print_line("")?;
        print_line(&out::key_table(&keys))?;
    }
    Ok(0)
}

fn rotate_or_add(g: &Global, a: &PurposeArgs, rotate: bool) -> Outcome {
    if a.algorithm.is_some() && a.purpose != PurposeArg::Sign {
        return Err(usage("--algorithm goes with --purpose sign"));
    }
    if a.format.is_some() && a.purpose != PurposeArg::Stream {
        return Err(usage("--format goes with --purpose stream"));
    }
    let kc = open::keychain(g)?;
    let alg = algorithm(a.algorithm.unwrap_or(AlgorithmArg::Ed25519));
    let fmt = stream_format(a.format.unwrap_or(StreamFormatArg::OneMb));
    let k = match (a.purpose, rotate) {
        (PurposeArg::Encrypt, true) => kc.rotate()?,
        (PurposeArg::Derive, true) => kc.rotate_derivation()?,
        (PurposeArg::Sign, true) => kc.rotate_signing(alg)?,
        (PurposeArg::Stream, true) => kc.rotate_streaming(fmt)?,
        (PurposeArg::Encrypt, false) => kc.add_key(Purpose::Encrypt)?,
        (PurposeArg::Derive, false) => kc.add_key(Purpose::Derive)?,
        (PurposeArg::Sign, false) => kc.add_signing_key(alg)?,
        (PurposeArg::Stream, false) => kc.add_stream_key(fmt)?,
    };
    report(g, &k, if rotate { "rotated" } else { "added" })
}

fn status(
    g: &Global,
    key_id: u32,
    done: &str,
    change: fn(&Keychain, u32) -> keystrata::Result<()>,
) -> Outcome {
    let kc = open::keychain(g)?;
    change(&kc, key_id)?;
    let k = find(&kc, key_id)?;
    report(g, &k, done)
}

fn find(kc: &Keychain, key_id: u32) -> Result<KeyInfo, Failure> {
    kc.keys()?
        .into_iter()
        .find(|k| k.key_id == key_id)
        .ok_or_else(|| {
            err(
                ErrorKind::UnknownKey,
                format!("no key {key_id} in this keychain"),
            )
        })
}

fn report(g: &Global, k: &KeyInfo, done: &str) -> Outcome {
    if g.json {
        print_json(&key_json(k))?;
    } else {
        print_line(&format!("{done}: {}", key_line(k)))?;
    }
    Ok(0)
}

fn migrate(g: &Global, a: &MigrateArgs) -> Outcome {
    let location = open::location(g)?;
    let old_root = open::root(g)?;
    let new_root = open::root_from(&a.to_root)?;
    let src = open::store(location)?;
    let current = src.load()?.ok_or_else(|| open::missing(location))?;
    // In memory only: loaded under the old root, saved under the new one,
    // and that save loaded back under the new root and compared before
    // anything is written.
    let kc = Keychain::load(&current.bytes, &*old_root)?;
    let keys = kc.keys()?;
    let policy = kc.policy()?;
    let bytes = kc.save(&*new_root)?;
    check_same(&bytes, &*new_root, &keys, &policy, "the new save")?;
    let (dest, in_place) = match &a.to_keychain {
        Some(dest) => {
            let dst = open::store(dest)?;
            if let Swap::Conflict = dst.compare_and_swap(None, &bytes)? {
                return Err(invalid(format!(
                    "{dest} exists already; not overwriting it (nothing was changed)"
                )));
            }
            verify_stored(&*dst, &bytes, dest)?;
            (dest.as_str(), false)
        }
        None => {
            // Only if nobody changed the keychain since it was read.
            if let Swap::Conflict = src.compare_and_swap(Some(current.revision), &bytes)? {
                return Err(err(
                    ErrorKind::Unavailable,
                    format!(
                        "the keychain at {location} changed during the migration; nothing was \
                         replaced: run the migration again"
                    ),
                ));
            }
            verify_stored(&*src, &bytes, location)?;
            (location, true)
        }
    };
    if g.json {
        print_json(&json!({
            "from": location,
            "to": dest,
            "in_place": in_place,
            "from_provider": old_root.provider(),
            "to_provider": new_root.provider(),
            "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
        }))?;
    } else {
        print_line(&format!(
            "migrated {} keys from {} ({}) to {} ({}){}",
            keys.len(),
            location,
            old_root.provider(),
            dest,
            new_root.provider(),
            if in_place { ", in place" } else { "" }
        ))?;
        out::note(
            g,
            "restart the programs that use this keychain with the new root: handles opened \
             under the old one can no longer read it",
        );
    }
    Ok(0)
}

/// Loads `bytes` under `root` and checks it holds the same keys and policy.
fn check_same(
    bytes: &[u8],
    root: &dyn keystrata::Root,
    keys: &[KeyInfo],
    policy: &Policy,
    what: &str,
) -> Result<(), Failure> {
    let again = Keychain::load(bytes, root).map_err(|e| {
        err(
            e.kind(),
            format!("{what} does not load under the new root: {}", e.message()),
        )
    })?;
    if again.keys()? != keys || again.policy()? != *policy {
        return Err(err(
            ErrorKind::Internal,
            format!("{what} does not hold the same keys and policy"),
        ));
    }
    Ok(())
}

/// Reads back what was written: the same bytes that loaded under the new
/// root above (so no second unwrap by the root is needed).
fn verify_stored(
    store: &dyn keystrata::Store,
    bytes: &[u8],
    location: &str,
) -> Result<(), Failure> {
    let stored = store.load()?.ok_or_else(|| {
        err(
            ErrorKind::Io,
            format!("{location} is empty after writing it"),
        )
    })?;
    if stored.bytes != bytes {
        return Err(err(
            ErrorKind::Io,
            format!("{location} does not hold what was just written to it"),
        ));
    }
    Ok(())
}
