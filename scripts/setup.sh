#!/usr/bin/env bash
# Install what keystrata's builds and tests need on a Debian (bookworm) machine.
#
#   bash scripts/setup.sh
#
# Idempotent: installs only what is missing and prints one line per thing it
# installs; silent when everything is already present. Needs no stdin (works
# with CI=true). Needs root (or passwordless sudo) only if apt packages are
# missing.
#
# Set PYTHON to choose the interpreter for the venv (default: python3; the
# pins below are checked against Python 3.11).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
PYTHON="${PYTHON:-python3}"

# softhsm2 + opensc: the PKCS#11 peer (tests start a token in a temp dir).
# libssl-dev: OpenSSL EVP, the C peer of `make bench`.
# etcd-server + etcd-client: the etcd store's peer (a 3-member cluster on
# loopback); protobuf-compiler: `protoc`, which the etcd-client crate's
# build needs, and libprotobuf-dev for the google/protobuf/*.proto files
# its protos import (Debian's protoc ships without them).
APT_PACKAGES=(age minisign libjansson-dev valgrind pkg-config softhsm2 opensc openssl libssl-dev
  etcd-server etcd-client protobuf-compiler libprotobuf-dev)

# Pinned Python tools (all install as wheels on CPython 3.11 / x86_64 Linux).
PIP_PINS=(
  "tink==1.16.1"
  "cryptography==50.0.2"
  "pytest==9.2.0"
  "maturin==1.16.0"
  "mypy==2.4.1"
  "protobuf==7.36.2"  # tink's runtime dependency, pinned so a new major cannot break tink
  "PyKMIP==0.11.0"    # the KMIP peer: its server runs on loopback during tests
  "SQLAlchemy==2.1.9" # PyKMIP's server keeps its keys in SQLite through it
  "moto[server]==5.2.5" # the AWS KMS peer: moto's server runs on loopback during tests
  "prometheus-client==0.26.0" # its parser checks the metrics text (metrics_text) in the tests
)

log() { echo "setup: $*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo -n)
fi

apt_updated=0
quiet_run() {
  # Run a command with its output hidden unless it fails.
  local out
  if ! out="$("$@" </dev/null 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "setup: failed: $*" >&2
    return 1
  fi
}

apt_install() {
  # $@: Debian package names that are missing.
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" -eq 0 ]; then
    quiet_run "${SUDO[@]}" apt-get update -q
    apt_updated=1
  fi
  quiet_run "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$@"
}

# --- apt packages -----------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  for pkg in "${missing[@]}"; do log "apt-get install $pkg"; done
  apt_install "${missing[@]}"
fi

# --- Python venv ------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "python venv $VENV ($("$PYTHON" -c 'import platform; print(platform.python_version())'))"
  if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv for ensurepip.
    rm -rf "$VENV"
    if ! dpkg -s python3-venv >/dev/null 2>&1; then
      log "apt-get install python3-venv"
      apt_install python3-venv
    fi
    "$PYTHON" -m venv "$VENV"
  fi
fi

# --- pip packages (install only the pins that are not already satisfied) ----
mapfile -t need < <("$VENV/bin/python" - "${PIP_PINS[@]}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    name = name.split("[")[0]  # moto[server]: the version is moto's
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    if have != want:
        print(pin)
PY
)
if [ "${#need[@]}" -gt 0 ]; then
  for pin in "${need[@]}"; do log "pip install $pin"; done
  PIP_DISABLE_PIP_VERSION_CHECK=1 quiet_run "$VENV/bin/python" -m pip install --no-input "${need[@]}"
fi

# --- Cosmian KMS (the KMIP root's second test peer) ---------------------------
# Built from crates.io once (nightly Rust: 5.0 uses min_specialization; newer
# published versions do not build without FIPS) and cached outside the repo,
# so later runs and other clones skip it. The slowest step of a fresh setup
# (docs/KMIP.md gives the measured cost).
COSMIAN_ROOT="$HOME/.cache/keystrata/cosmian"
if [ ! -x "$COSMIAN_ROOT/bin/cosmian_kms" ]; then
  if ! rustup run nightly rustc -V >/dev/null 2>&1; then
    log "rustup toolchain install nightly (to build Cosmian KMS)"
    quiet_run rustup toolchain install nightly --profile minimal
  fi
  log "cargo +nightly install cosmian_kms_server@5.0.0 --locked --root $COSMIAN_ROOT (the Cosmian KMS test peer; a long build)"
  cosmian_start=$SECONDS
  quiet_run cargo +nightly install cosmian_kms_server@5.0.0 --locked --root "$COSMIAN_ROOT"
  log "Cosmian KMS built in $(( (SECONDS - cosmian_start) / 60 )) min"
fi
