module github.com/keystrata/keystrata/bindings/go

go 1.26
