//! Link facts of the C library that Cargo.toml cannot express.
//!
//! The shared library gets an ELF SONAME, `libkeystrata.so.<abi>`, so a
//! program linked against it records that name and keeps loading a
//! compatible newer build (`make install` puts `libkeystrata.so.X.Y.Z` there
//! with the `.so.<abi>` and `.so` links). `<abi>` is the major version from
//! 1.0 on; before that it is `0.<minor>`, because a 0.x minor release may
//! break the ABI (0.2 does: per-call errors), and a program built against
//! 0.1 must not load 0.2.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = !matches!(os.as_str(), "macos" | "ios" | "windows");
    if elf {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
        let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_else(|_| "0".into());
        let abi = if major == "0" {
            format!("0.{minor}")
        } else {
            major
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkeystrata.so.{abi}");
    }
}
