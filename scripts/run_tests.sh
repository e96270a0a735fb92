#!/usr/bin/env bash
# Sets up the environment and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m pytest -n 2 -q tests "$@"
