#!/usr/bin/env bash
# Installs the Python peers of the benchmarks into the project venv (.venv),
# idempotently: silent when they are already there. Tink and cryptography
# are pinned in scripts/setup.sh; this adds the AWS Encryption SDK.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="$REPO/.venv/bin/python"
PINS=("aws-encryption-sdk==4.0.7" "tink==1.16.1" "cryptography==50.0.2")
missing=()
for pin in "${PINS[@]}"; do
  name="${pin%%==*}"; want="${pin##*==}"
  have="$("$PY" -c "import importlib.metadata as m,sys
try: print(m.version(sys.argv[1]))
except Exception: print('')" "$name")"
  [ "$have" = "$want" ] || missing+=("$pin")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bench: pip install ${missing[*]}"
  "$PY" -m pip install --quiet "${missing[@]}"
fi
