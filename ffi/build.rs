//! Link facts of the C library that Cargo.toml cannot express.
//!
//! The shared library gets an ELF SONAME, `libkeystrata.so.<major>`, so a
//! program linked against it records that name and keeps loading a
//! compatible newer build (`make install` puts `libkeystrata.so.X.Y.Z` there
//! with the `.so.<major>` and `.so` links). While the version is 0.x the
//! major is 0, so the SONAME is `libkeystrata.so.0`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = !matches!(os.as_str(), "macos" | "ios" | "windows");
    if elf {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkeystrata.so.{major}");
    }
}
