#!/usr/bin/env bash
# Runs docs/SIGNING.md as written: its Python blocks, in order, as one
# program (they share variables), then its shell blocks (OpenSSL and
# minisign verify what the Python made), in a fresh directory holding the
# files the text signs (release.tar, plugin.zip). The HSM is the SoftHSM2
# peer (scripts/peers.sh); its PIN is read from HSM_PIN, as the text says.
# AWS KMS is the moto peer: an ECC_SECG_P256K1 key under a fresh alias is
# made there first, and the text reads the alias and endpoint from
# RELEASE_KMS_KEY and KMS_ENDPOINT.
# Last line: `docs-signing: N passed, M failed`.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${KS_TEST_PKCS11_MODULE:?the SoftHSM2 peer is not started: eval \"\$(bash scripts/peers.sh start)\"}"
: "${KS_TEST_AWS_ENDPOINT:?the moto peer is not started: eval \"\$(bash scripts/peers.sh start)\"}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
blocks() { # blocks LANG: every fenced LANG block of the file, concatenated
  awk -v lang="$1" '$0 == "```" lang { on = 1; next } on && /^```/ { on = 0; print ""; next } on { print }' "$REPO/docs/SIGNING.md"
}
blocks python >"$tmp/signing.py"
blocks sh >"$tmp/signing.sh"
head -c 100000 /dev/urandom >"$tmp/release.tar"
head -c 30000 /dev/urandom >"$tmp/plugin.zip"
passed=0 failed=0
step() { # step NAME COMMAND...
  if (cd "$tmp" && "${@:2}") >"$tmp/$1.log" 2>&1; then
    passed=$((passed + 1)); echo "docs-signing: $1 ok"
  else
    failed=$((failed + 1)); echo "docs-signing: $1 FAILED"; cat "$tmp/$1.log"
  fi
}
[[ -s "$tmp/signing.py" && -s "$tmp/signing.sh" ]] || { echo "docs-signing: no python or sh blocks"; exit 1; }
kms_alias="alias/release-signing-$$-$RANDOM"
step kms-key bash "$KS_TEST_AWS_CTL" key "$KS_TEST_AWS_DIR" ECC_SECG_P256K1 "$kms_alias"
step python env HSM_MODULE="$KS_TEST_PKCS11_MODULE" HSM_TOKEN="$KS_TEST_PKCS11_TOKEN" HSM_PIN="$KS_TEST_PKCS11_PIN" \
  RELEASE_KMS_KEY="$kms_alias" KMS_ENDPOINT="$KS_TEST_AWS_ENDPOINT" \
  "$REPO/.venv/bin/python" signing.py
step shell bash -euxo pipefail signing.sh
# The official signature really is checked: a changed file fails.
printf x >>"$tmp/release.tar"
step openssl-rejects-a-changed-file sh -c '! openssl dgst -sha256 -verify release-2026.pem -signature release.tar.sig release.tar'
step openssl-rejects-a-changed-file-kms sh -c '! openssl dgst -sha256 -verify release-kms.pem -signature release.tar.kms.sig release.tar'
echo "docs-signing: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
