#!/bin/bash
# Example second stage of chain_flow.py: receives the first stage's output as $INPUT_URI.
set -euo pipefail
echo "loading ${INPUT_URI:?INPUT_URI is not set: run me from chain_flow.py}"
echo "${INPUT_URI}" > "${ORCA_OUTPUT_DIR}/loaded-from.txt"
echo "load done"
