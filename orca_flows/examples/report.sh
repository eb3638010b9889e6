#!/bin/bash
# Example shell pipeline: a tiny "report" that lists its environment and writes a file.
set -euo pipefail
echo "report for pipeline ${ORCA_PIPELINE}, run ${ORCA_RUN_ID}"
echo "working directory: $(pwd)"
uname -sr > "${ORCA_OUTPUT_DIR}/host.txt"
date -u +%Y-%m-%dT%H:%M:%SZ >> "${ORCA_OUTPUT_DIR}/host.txt"
echo "report written"
