package keystrata

// This is the one file that holds the cgo flags. The package finds the C
// library through pkg-config, as keystrata-static (libkeystrata.a and the
// system libraries it needs), so a Go binary using keystrata is
// self-contained and works from a module cache or a vendor directory.
//
// Installed: `make install PREFIX=/usr/local` at the repository root, then
// PKG_CONFIG_PATH=/usr/local/lib/pkgconfig if pkg-config does not search
// there already. In this repository: `make lib` writes uninstalled
// pkg-config files to target/release/pkgconfig; the Makefile and the test
// scripts give that directory to go as PKG_CONFIG_PATH. By hand, at the
// root: PKG_CONFIG_PATH=$PWD/target/release/pkgconfig go test ./bindings/go/...
// (for go only: aws-lc-sys's build script reruns when cargo sees the
// variable change).

/*
#cgo pkg-config: keystrata-static
*/
import "C"
