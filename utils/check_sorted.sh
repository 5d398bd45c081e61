#!/usr/bin/env bash
# Check that Kaldi-style files are sorted (LC_ALL=C) with unique ids; lists every problem.
# Usage: utils/check_sorted.sh FILE [FILE ...]
set -euo pipefail
. "$(dirname "$0")/_py.sh"
exec "${PYTHON}" -m dispatch.bin.scp check-sorted "$@"
