module github.com/keystrata/keystrata/tests/fleet/go

go 1.26

require github.com/keystrata/keystrata/bindings/go v0.0.0

replace github.com/keystrata/keystrata/bindings/go => ../../../bindings/go
