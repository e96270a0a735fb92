#!/usr/bin/env bash
# Sets up the environment and runs the test suite.
#   bash scripts/run_tests.sh           every test (CI)
#   bash scripts/run_tests.sh --fast    leaves out the tests marked slow
# Further arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
args=()
for arg in "$@"; do
  if [[ $arg == --fast ]]; then args+=(-m "not slow"); else args+=("$arg"); fi
done
exec .venv/bin/python -m pytest -n 2 --dist loadgroup -q tests "${args[@]}"
