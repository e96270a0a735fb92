#!/usr/bin/env bash
# Runs one task of a --distribution=multi_worker job: writes this host's
# TF_CONFIG, then runs run.py with the same flags on every host.
#
# Usage (the same command on every machine, only TASK_INDEX differs):
#   HOSTS=host0:2222,host1:2222,host2:2222 TASK_INDEX=0 \
#     scripts/launch_multi_worker.sh --use_tpu=False --distribution=multi_worker \
#       --model_dir=gs://bucket/run ... (every other run.py flag)
# HOSTS: every machine's host:port, in the same order everywhere; the first
# is the chief (it writes model_dir, summaries and flags.json).  TASK_INDEX:
# this machine's position in HOSTS (0 = chief).  model_dir must be shared
# (gs:// or a shared file system).  Evaluate with a separate --mode=eval job.
set -euo pipefail
: "${HOSTS:?set HOSTS=host0:port,host1:port,... with the chief first}"
: "${TASK_INDEX:?set TASK_INDEX to the position of this machine in HOSTS, 0 = chief}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
IFS=',' read -r -a hosts <<< "${HOSTS}"
if (( TASK_INDEX < 0 || TASK_INDEX >= ${#hosts[@]} )); then
  echo "TASK_INDEX=${TASK_INDEX} is not a position in HOSTS (${#hosts[@]} hosts)" >&2
  exit 2
fi
quote() { printf '"%s"' "$1"; }
workers=""
for host in "${hosts[@]:1}"; do
  workers="${workers:+${workers},}$(quote "${host}")"
done
if (( TASK_INDEX == 0 )); then
  task='{"type": "chief", "index": 0}'
else
  task="{\"type\": \"worker\", \"index\": $((TASK_INDEX - 1))}"
fi
export TF_CONFIG="{\"cluster\": {\"chief\": [$(quote "${hosts[0]}")], \"worker\": [${workers}]}, \"task\": ${task}}"
echo "TF_CONFIG=${TF_CONFIG}" >&2
exec "${PYTHON}" "${ROOT}/run.py" "$@"
