# keystrata — the two commands:
#   make demo   build and run the demo
#   make test   install what is missing, then run every test suite
#
# Other targets: setup, build, doc, clean.

SHELL := /bin/bash
CARGO ?= cargo
export GOTOOLCHAIN := local

.PHONY: all build demo test setup doc clean

all: build

setup:
	@bash scripts/setup.sh

build:
	$(CARGO) build --workspace --release

# Rust today; the C, Go and Python programs join as their bindings land.
demo: setup
	$(CARGO) run --quiet --release -p keystrata --example demo

test: setup
	@bash scripts/test.sh

doc:
	$(CARGO) doc --workspace --no-deps --all-features

clean:
	$(CARGO) clean
	rm -rf .venv
