#!/usr/bin/env bash
# Your own data, no data preparation to write: set CUSTOM_CLEAN_DIR (clean speech) and
# CUSTOM_NOISE_DIR (noise) in db.sh; any sample rate, wav or flac, nested folders.
# Mixtures are made at random SNRs and split into train/valid/test (see local/data.sh options).
#   ./run.sh --quick true    CPU-sized models (conf/quick/), minutes on a laptop: check your data and
#                            the pipeline end to end, clips longer than 1 s
#   ./run.sh                 paper-size models (conf/teacher.yaml: Conv-TasNet, 4 s chunks), for a GPU
# Any option of enh_distill.sh can be added; ./enh_distill.sh --help lists them.
set -euo pipefail

quick=false                           # true: the CPU-sized configs of conf/quick/
fs=16000                              # everything is resampled to this rate
ngpu=$(utils/num_gpus.sh)             # GPUs per training job: every GPU present (0: CPU)
teacher_config=conf/teacher.yaml      # Conv-TasNet, paper size
student_config=conf/student.yaml      # 0.18M Conv-TasNet
kd_configs="conf/kd/l2_mag.yaml conf/kd/dispatch_l2.yaml conf/kd/mssp_dfkd.yaml"
local_data_opts="--snr_low -5 --snr_high 15 --seed 0"   # mixing options of dispatch.bin.prep_custom

args=()   # --quick is this script's own option; everything else goes to enh_distill.sh
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=${2:?--quick needs true or false}; shift 2 ;;
        --quick=*) quick=${1#*=}; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
case "${quick}" in
    true) teacher_config=conf/quick/teacher.yaml; student_config=conf/quick/student.yaml ;;
    false) ;;
    *) echo "run.sh: --quick takes true or false, got '${quick}'" >&2; exit 1 ;;
esac

./enh_distill.sh --fs "${fs}" --ngpu "${ngpu}" --nj 4 \
    --train_set train --valid_set valid --test_sets test \
    --teacher_config "${teacher_config}" --student_config "${student_config}" \
    --kd_configs "${kd_configs}" --local_data_opts "${local_data_opts}" "${args[@]}"
