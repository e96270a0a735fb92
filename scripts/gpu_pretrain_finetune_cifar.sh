#!/usr/bin/env bash
# RPC's script name (martinmamql/relative_predictive_coding vision/), one GPU:
# runs the recipe rpc_cifar10_r18.sh with your flags; --help prints its header.
exec bash "$(dirname "${BASH_SOURCE[0]}")/rpc_cifar10_r18.sh" "$@"
