#!/usr/bin/env bash
# SupCon's script name (google-research/google-research supcon/scripts/):
# runs the recipe simclr_imagenet_r50_supcon.sh with your flags; --help prints its header.
exec bash "$(dirname "${BASH_SOURCE[0]}")/simclr_imagenet_r50_supcon.sh" "$@"
