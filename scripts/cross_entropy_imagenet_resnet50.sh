#!/usr/bin/env bash
# SupCon's script name (google-research/google-research supcon/scripts/):
# runs the recipe ce_imagenet_r50.sh with your flags; --help prints its header.
exec bash "$(dirname "${BASH_SOURCE[0]}")/ce_imagenet_r50.sh" "$@"
