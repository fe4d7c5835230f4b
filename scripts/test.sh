#!/usr/bin/env bash
# Runs the whole test suite. Installs/builds first if needed (idempotent), so it works on a fresh machine.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup.sh" --no-demo
cd "$ROOT"
rm -rf TestResults
set +e
dotnet test HiCI.slnx -c Release --no-build -nologo --logger "trx;LogFileName=results.trx" --results-directory TestResults "$@"
rc=$?
set -e
# One plain closing line ('N passed, N failed') that any reader understands.
trx=$(find TestResults -name '*.trx' | head -1)
if [ -n "$trx" ]; then
  c=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(echo "$c" | sed -n 's/.* passed="\([0-9]*\)".*/\1/p'); f=$(echo "$c" | sed -n 's/.* failed="\([0-9]*\)".*/\1/p')
  t=$(echo "$c" | sed -n 's/.* total="\([0-9]*\)".*/\1/p'); e=$(echo "$c" | sed -n 's/.* executed="\([0-9]*\)".*/\1/p')
  echo "tests: ${p:-0} passed, ${f:-0} failed, $(( ${t:-0} - ${e:-0} )) skipped"
fi
exit $rc
