#!/usr/bin/env bash
# Your own data, no data preparation to write: set CUSTOM_CLEAN_DIR (clean speech) and
# CUSTOM_NOISE_DIR (noise) in db.sh; any sample rate, wav or flac, nested folders.
# Mixtures are made at random SNRs and split into train/valid/test (see local/data.sh options).
set -euo pipefail

fs=16000                              # everything is resampled to this rate
ngpu=1                                # GPUs per training job (0: CPU)
teacher_config=conf/teacher.yaml      # Conv-TasNet, paper size
student_config=conf/student.yaml      # 0.18M Conv-TasNet
kd_configs="conf/kd/l2_mag.yaml conf/kd/dispatch_l2.yaml conf/kd/mssp_dfkd.yaml"
local_data_opts="--snr_low -5 --snr_high 15 --seed 0"   # mixing options of dispatch.bin.prep_custom

./enh_distill.sh --fs "${fs}" --ngpu "${ngpu}" --nj 4 \
    --train_set train --valid_set valid --test_sets test \
    --teacher_config "${teacher_config}" --student_config "${student_config}" \
    --kd_configs "${kd_configs}" --local_data_opts "${local_data_opts}" "$@"
