#!/usr/bin/env bash
# Print how many GPUs this machine offers (0 without an NVIDIA driver); CUDA_VISIBLE_DEVICES
# narrows the count as it does for torch. The recipes' default --ngpu: ngpu=$(utils/num_gpus.sh)
set -euo pipefail
n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [ -n "${CUDA_VISIBLE_DEVICES+x}" ]; then
    visible=$(printf '%s' "${CUDA_VISIBLE_DEVICES}" | tr ',' '\n' | grep -c '^[0-9a-zA-Z]' || true)
    [ "${visible}" -lt "${n:-0}" ] && n=${visible}
fi
echo "${n:-0}"
