package keystrata

// This is the one file that holds the cgo flags. The package links the
// static library target/release/libkeystrata.a (built by `make lib` at the
// repository root), so a Go binary using keystrata is self-contained.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libkeystrata.a -lpthread -ldl -lm -lrt -lutil
*/
import "C"
