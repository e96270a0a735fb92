#!/usr/bin/env bash
# Creates .venv (Python 3.11) with the package and its test and augment extras, and installs
# the offline Fashion-MNIST data from Debian when it is missing.  Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
if ! command -v "$PYTHON" >/dev/null; then PYTHON=python3; fi
FMNIST=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$FMNIST" ] && command -v apt-get >/dev/null; then
  SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist) \
    || echo "warning: could not install dataset-fashion-mnist; pass --data_dir" >&2
fi
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
if ! .venv/bin/python -c "import tensorflow, tensorflow_estimator, tensorflow_hub, tensorflow_datasets, tensorflow_addons, official, matplotlib, pytest, xdist" 2>/dev/null \
   || [ setup.py -nt .venv/.installed ]; then
  # pip's notices go to a log that is shown only when the install fails.
  LOG=.venv/pip-install.log
  if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e '.[test,augment]'; } >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "error: installing the package failed (log: $LOG)" >&2
    exit 1
  fi
  touch .venv/.installed
fi
