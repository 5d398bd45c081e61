#!/usr/bin/env bash
# Split an scp into contiguous parts by utterance, one part per output file.
# Usage: utils/split_scp.sh IN OUT1 [OUT2 ...]
set -euo pipefail
. "$(dirname "$0")/_py.sh"
exec "${PYTHON}" -m dispatch.bin.scp split "$@"
