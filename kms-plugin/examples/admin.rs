//! Changes the keychain a plugin serves, from another process, as
//! `keystrata keychain …` will: what the tests use to rotate, disable and
//! destroy keys under a running plugin.
//!
//! ```text
//! admin --keychain LOCATION --root URI COMMAND [KEY_ID]
//! ```
//!
//! Commands: `primary`, `rotate`, `add` (a key that is not primary),
//! `promote ID`, `disable ID`, `enable ID`, `destroy ID`, `keys`. A key is
//! printed as `key_id=N version=V status=S primary=B purpose=P`. Exit 1 on
//! an error, 2 on bad usage.

use std::sync::Arc;

use keystrata::{root, store, KeyInfo, OpenOptions, Purpose};

const USAGE: &str = "usage: admin --keychain LOCATION --root URI \
(primary | rotate | add | promote ID | disable ID | enable ID | destroy ID | keys)";

fn show(k: &KeyInfo) -> String {
    format!(
        "key_id={} version={} status={} primary={} purpose={}",
        k.key_id, k.version, k.status, k.primary, k.purpose
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut keychain, mut root, mut rest) = (None, None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--keychain" => keychain = args.next(),
            "--root" => root = args.next(),
            _ => rest.push(a),
        }
    }
    let (Some(keychain), Some(root)) = (keychain, root) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let id = |i: usize| -> u32 {
        match rest.get(i).map(|s| s.parse::<u32>()) {
            Some(Ok(n)) => n,
            _ => {
                eprintln!("admin: {} needs a key_id\n{USAGE}", rest[0]);
                std::process::exit(2);
            }
        }
    };
    let result = (|| -> keystrata::Result<String> {
        let root = root::from_uri(&root)?;
        let kc = OpenOptions::new()
            .open_store(store::open_location(keychain.as_ref())?, Arc::from(root))?;
        Ok(match rest.first().map(String::as_str) {
            Some("primary") => show(&kc.primary()?),
            Some("rotate") => show(&kc.rotate()?),
            Some("add") => show(&kc.add_key(Purpose::Encrypt)?),
            Some("promote") => show(&kc.promote(id(1))?),
            Some("disable") => kc.disable(id(1)).map(|()| "ok".to_string())?,
            Some("enable") => kc.enable(id(1)).map(|()| "ok".to_string())?,
            Some("destroy") => kc.destroy(id(1)).map(|()| "ok".to_string())?,
            Some("keys") => kc.keys()?.iter().map(show).collect::<Vec<_>>().join("\n"),
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        })
    })();
    match result {
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("admin: error: {e}");
            std::process::exit(1);
        }
    }
}
