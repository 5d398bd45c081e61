#!/usr/bin/env bash
# Keep the lines of an scp whose id is in IDLIST (the first field of each of its lines).
# Usage: utils/filter_scp.sh [--exclude] IDLIST IN > OUT
set -euo pipefail
. "$(dirname "$0")/_py.sh"
exclude=()
if [ "${1:-}" = "--exclude" ]; then exclude=(--exclude); shift; fi
exec "${PYTHON}" -m dispatch.bin.scp filter "${exclude[@]}" "$@"
