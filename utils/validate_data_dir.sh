#!/usr/bin/env bash
# Report every problem of a data dir at once (missing files, unsorted or duplicate ids, ids that
# differ between wav.scp/spk*.scp/noise*.scp/utt2spk, spk2utt not matching utt2spk, missing audio).
# Usage: utils/validate_data_dir.sh [--no_check_files] DIR     exit 1 if anything is wrong
set -euo pipefail
. "$(dirname "$0")/_py.sh"
if [ $# -lt 1 ]; then
    echo "Usage: $0 [--no_check_files] DIR" >&2
    exit 1
fi
args=()
if [ "$1" = "--no_check_files" ]; then args=(--no_check_files); shift; fi
"${PYTHON}" -m dispatch.bin.scp validate "${args[@]}" "$@"
echo "$0: $1 is a valid data dir"
