//! The committed C header carries the crate's version: `make header` writes
//! the KEYSTRATA_VERSION* macros from the workspace version, and this test
//! fails when the two diverge (after a version bump without `make header`).
//! The same idea as rustls-ffi's `tools/tests/rustls_header_version.rs`.

use std::path::Path;

/// The value of `#define NAME value` in the header, if present.
fn define<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("#define"), Some(n), Some(value)) if n == name => Some(value),
            _ => None,
        }
    })
}

#[test]
fn header_version_matches_crate_version() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/keystrata.h");
    let header = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let quoted = format!("\"{}\"", env!("CARGO_PKG_VERSION"));
    let want = [
        ("KEYSTRATA_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("KEYSTRATA_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("KEYSTRATA_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
        ("KEYSTRATA_VERSION", quoted.as_str()),
    ];
    for (name, value) in want {
        assert_eq!(
            define(&header, name),
            Some(value),
            "{name} in include/keystrata.h differs from the crate version {}: run `make header`",
            env!("CARGO_PKG_VERSION"),
        );
    }
}

/// The version lines cbindgen copies into the header live in
/// ffi/cbindgen.toml; they must be the crate's version too.
#[test]
fn cbindgen_toml_version_matches_crate_version() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cbindgen.toml");
    let toml = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let quoted = format!("\"{}\"", env!("CARGO_PKG_VERSION"));
    for (name, value) in [
        ("KEYSTRATA_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("KEYSTRATA_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("KEYSTRATA_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
        ("KEYSTRATA_VERSION", quoted.as_str()),
    ] {
        assert_eq!(
            define(&toml, name),
            Some(value),
            "{name} in ffi/cbindgen.toml differs from the crate version: bump it and run `make header`"
        );
    }
}
