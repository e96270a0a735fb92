#!/usr/bin/env bash
# SupCon's script name (google-research/google-research supcon/scripts/):
# runs the recipe supcon_imagenet_r50.sh with your flags; --help prints its header.
exec bash "$(dirname "${BASH_SOURCE[0]}")/supcon_imagenet_r50.sh" "$@"
