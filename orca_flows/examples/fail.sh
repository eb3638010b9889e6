#!/bin/bash
# Example pipeline that fails on purpose: its run ends `failed` with exit code 3.
echo "checking the upstream extract..."
echo "upstream extract is missing: failing on purpose" >&2
exit 3
