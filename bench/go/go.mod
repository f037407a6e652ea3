module github.com/keystrata/keystrata/bench/go

go 1.26.0

require github.com/keystrata/keystrata/bindings/go v0.0.0

require golang.org/x/crypto v0.58.0

replace github.com/keystrata/keystrata/bindings/go => ../../bindings/go
