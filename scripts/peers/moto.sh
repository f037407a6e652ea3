#!/usr/bin/env bash
# A moto server on loopback standing in for AWS KMS, for the AWS KMS root's
# and signer's tests (core/tests/conformance_aws_kms.rs).
#
#   bash scripts/peers/moto.sh start DIR    # start (idempotent), state in DIR
#   bash scripts/peers/moto.sh env DIR      # print the exports the tests read
#   bash scripts/peers/moto.sh stop DIR     # stop it and every process of its group
#   bash scripts/peers/moto.sh pause DIR    # freeze it (SIGSTOP): connections are
#                                           # accepted, nothing is answered
#   bash scripts/peers/moto.sh resume DIR   # thaw it (SIGCONT)
#   bash scripts/peers/moto.sh key DIR SPEC [ALIAS]
#                                           # create a key (and the alias, alias/...),
#                                           # print its key ID; SPEC is
#                                           # SYMMETRIC_DEFAULT, ECC_NIST_P256 or
#                                           # ECC_SECG_P256K1 (for the C and Go tests,
#                                           # which have no AWS SDK of their own)
#   bash scripts/peers/moto.sh disable-key DIR KEY_ID
#
# moto keeps its keys in memory: a stop forgets every key, a pause keeps
# them (the outage check pauses, so the same key serves again after it).
# The port is chosen once per DIR, so a restart serves the same address.
#
# The server runs through $DIR/moto_server.py, written here: moto's own
# server plus two AWS KMS behaviours moto 5.2 lacks and the tests rely on
# (docs/AWS-KMS.md, "What moto does not model"). The path in its command
# line also lets scripts/peers-stopped.sh see it. Needs $REPO/.venv with
# moto[server] (make setup).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cmd="${1:-}"
DIR="${2:-}"
if [ -z "$cmd" ] || [ -z "$DIR" ]; then
  echo "usage: $0 start|stop|pause|resume|env DIR" >&2
  exit 2
fi
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
PYTHON="$REPO/.venv/bin/python"

# port_open, running, group_alive, stop_group, free_port.
. "$REPO/scripts/peers/lib.sh"

pick_port() {
  [ -s "$DIR/port" ] || free_port > "$DIR/port"
}

write_launcher() {
  cat > "$DIR/moto_server.py" <<'PY'
"""moto's server for keystrata's tests (written by scripts/peers/moto.sh).

Two AWS KMS behaviours that moto 5.2 does not model, and that keystrata's
AWS KMS signer and root are tested for, are added here as the AWS KMS API
reference describes them:

1. Sign with MessageType=DIGEST signs the given digest. moto reads
   MessageType and ignores it, hashing the digest again, so its signature
   verifies over SHA-256(digest) and never over the message (moto's open
   pull request #10202 fixes this upstream). ECDSA keys only here.
2. A key that is not Enabled refuses cryptographic operations: Disabled
   gives DisabledException, any other state (PendingDeletion, ...)
   KMSInvalidStateException. moto performs them as if it were enabled.

Nothing else is changed: every other request is moto's own answer.
"""
import base64
import json
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from moto.core.exceptions import JsonRESTError
from moto.kms.exceptions import ValidationException
from moto.kms.responses import KmsResponse
from moto.server import main

_DIGESTS = {
    "ECDSA_SHA_256": hashes.SHA256(),
    "ECDSA_SHA_384": hashes.SHA384(),
    "ECDSA_SHA_512": hashes.SHA512(),
}


def _check_state(response):
    key_id = response._get_param("KeyId")
    if not key_id:
        return
    try:
        key = response.kms_backend.describe_key(key_id)
    except Exception:
        return  # an unknown key: moto's own handler reports it
    if key.key_state == "Disabled":
        raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")
    if key.key_state == "PendingDeletion":
        raise JsonRESTError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
    if key.key_state != "Enabled":
        raise JsonRESTError(
            "KMSInvalidStateException", f"{key.arn} is in state {key.key_state}."
        )


def _sign_digest(response):
    key_id = response._get_param("KeyId")
    response._validate_key_id(key_id)
    key = response.kms_backend.describe_key(key_id)
    algorithm = response._get_param("SigningAlgorithm")
    if key.key_usage != "SIGN_VERIFY" or algorithm not in key.signing_algorithms:
        raise ValidationException(
            f"key {key.arn} cannot sign with {algorithm} (usage {key.key_usage})"
        )
    digest_alg = _DIGESTS.get(algorithm)
    if digest_alg is None:
        raise ValidationException(
            "this test server signs MessageType=DIGEST with ECDSA keys only"
        )
    digest = response._get_param("Message")
    if len(digest) != digest_alg.digest_size:
        raise ValidationException(f"Digest is invalid length for algorithm {algorithm}.")
    signature = key.private_key.private_key.sign(
        digest, ec.ECDSA(utils.Prehashed(digest_alg))
    )
    return json.dumps(
        {
            "KeyId": key.arn,
            "Signature": base64.b64encode(signature).decode("utf-8"),
            "SigningAlgorithm": algorithm,
        }
    )


def _patch():
    for name in (
        "encrypt",
        "decrypt",
        "re_encrypt",
        "generate_data_key",
        "generate_data_key_without_plaintext",
        "sign",
        "verify",
        "get_public_key",
        "generate_mac",
        "verify_mac",
    ):
        original = getattr(KmsResponse, name)

        def checked(self, _original=original, _name=name):
            _check_state(self)
            if _name == "sign" and self._get_param("MessageType") == "DIGEST":
                return _sign_digest(self)
            return _original(self)

        setattr(KmsResponse, name, checked)


_patch()
main(sys.argv[1:])
PY
}

case "$cmd" in
  start)
    if running && port_open "$(cat "$DIR/port")"; then
      echo "moto: already running on 127.0.0.1:$(cat "$DIR/port")"
      exit 0
    fi
    # A server of ours that does not listen is stopped before a new one
    # starts, never left behind.
    [ -s "$DIR/pid" ] && stop_group "$(cat "$DIR/pid")"
    "$PYTHON" -c 'import moto.server, flask, flask_cors' 2>/dev/null ||
      { echo "moto: $PYTHON has no moto[server] (run make setup)" >&2; exit 1; }
    pick_port
    write_launcher
    port="$(cat "$DIR/port")"
    if port_open "$port"; then
      echo "moto: port $port is taken by another process" >&2
      exit 1
    fi
    setsid nohup "$PYTHON" "$DIR/moto_server.py" -H 127.0.0.1 -p "$port" \
      </dev/null >>"$DIR/server.log" 2>&1 &
    echo $! > "$DIR/pid"
    for _ in $(seq 1 300); do
      if port_open "$port"; then
        echo "moto: listening on 127.0.0.1:$port"
        exit 0
      fi
      if ! running; then break; fi
      sleep 0.1
    done
    echo "moto: the server did not start; last lines of its log:" >&2
    tail -n 20 "$DIR/server.log" >&2 2>/dev/null || true
    exit 1
    ;;
  stop)
    # The whole process group, even when the server itself already exited.
    [ -s "$DIR/pid" ] && stop_group "$(cat "$DIR/pid")"
    rm -f "$DIR/pid"
    if [ -s "$DIR/port" ]; then
      for _ in $(seq 1 50); do
        port_open "$(cat "$DIR/port")" || break
        sleep 0.1
      done
    fi
    echo "moto: stopped"
    ;;
  pause | resume)
    running || { echo "moto: not running in $DIR" >&2; exit 1; }
    sig=STOP
    [ "$cmd" = resume ] && sig=CONT
    kill "-$sig" -- "-$(cat "$DIR/pid")"
    echo "moto: ${cmd}d"
    ;;
  key | disable-key)
    running || { echo "moto: not running in $DIR" >&2; exit 1; }
    arg="${3:-}"
    [ -n "$arg" ] || { echo "usage: $0 $cmd DIR ${cmd/disable-key/KEY_ID}" >&2; exit 2; }
    [ "$cmd" = key ] && arg="${arg^^}"
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true \
      "$PYTHON" - "$cmd" "$arg" "http://127.0.0.1:$(cat "$DIR/port")" "${4:-}" <<'PY'
import sys

import boto3

cmd, arg, endpoint, alias = sys.argv[1:]
kms = boto3.client("kms", region_name="us-east-1", endpoint_url=endpoint)
if cmd == "disable-key":
    kms.disable_key(KeyId=arg)
elif arg in ("SYMMETRIC_DEFAULT", "ECC_NIST_P256", "ECC_SECG_P256K1"):
    usage = "ENCRYPT_DECRYPT" if arg == "SYMMETRIC_DEFAULT" else "SIGN_VERIFY"
    key_id = kms.create_key(KeySpec=arg, KeyUsage=usage)["KeyMetadata"]["KeyId"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    print(key_id)
else:
    sys.exit(f"moto.sh key: SPEC must be SYMMETRIC_DEFAULT, ECC_NIST_P256 or ECC_SECG_P256K1, not {arg[:40]!r}")
PY
    ;;
  env)
    [ -s "$DIR/port" ] || { echo "moto: not started in $DIR" >&2; exit 1; }
    # Fixed test credentials (moto accepts any); IMDS off, so no SDK ever
    # looks for an instance role beyond loopback.
    echo "export KS_TEST_AWS_ENDPOINT=http://127.0.0.1:$(cat "$DIR/port")" \
      "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing" \
      "AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true"
    echo "export KS_TEST_AWS_DIR=$DIR KS_TEST_AWS_CTL=$REPO/scripts/peers/moto.sh"
    ;;
  *)
    echo "usage: $0 start|stop|pause|resume|env DIR | key DIR SPEC [ALIAS] | disable-key DIR KEY_ID" >&2
    exit 2
    ;;
esac
