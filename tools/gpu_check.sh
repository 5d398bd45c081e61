#!/usr/bin/env bash
# The prepared GPU check: one command, one table, under 8 minutes on one GPU (issue 17).
#   tools/gpu_check.sh            paper-size pairs at batch 16 x 4 s, fp32 and bf16, every KD method,
#                                 the STFT paths, the teacher-cache speed and 200 real training steps;
#                                 on a machine without a CUDA GPU: one line, exit status 0
#   tools/gpu_check.sh --smoke    the same code at a tiny size on the CPU (CI runs this)
#   tools/gpu_check.sh --help     every option
# Uses tools/venv when it exists (installing it if needed and the package index is reachable),
# else the python3 on PATH, which must have the pinned stack (torch 2.11, espnet 202511).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
if [ -x tools/venv/bin/python ] || ! python3 -c 'import torch, espnet2, dispatch' >/dev/null 2>&1; then
    tools/install.sh
    # shellcheck disable=SC1091
    . tools/activate_python.sh
fi
exec python3 -m dispatch.bin.gpu_check "$@"
