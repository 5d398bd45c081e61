#!/usr/bin/env bash
# VoiceBank+DEMAND (ESPnet's vctk_noisy): set VCTK_NOISY in db.sh to the corpus as distributed.
#   ./run.sh --ngpu 1                         Conv-TasNet teacher -> small Conv-TasNet, every KD method
#   ./run.sh --teacher_config conf/tuning/teacher_dccrn.yaml --student_config conf/tuning/student_dccrn.yaml \
#            --kd_configs "conf/kd/mssp_dfkd.yaml conf/tuning/kd_atkl_dccrn.yaml"     the DCCRN pair
set -euo pipefail

fs=16000                              # the 48 kHz corpus is resampled to 16 kHz in stage 1
ngpu=$(utils/num_gpus.sh)             # GPUs per training job: every GPU present (0: CPU)
teacher_config=conf/teacher.yaml      # Conv-TasNet, paper size (conf/tuning/teacher_tasnet.yaml)
student_config=conf/student.yaml      # 0.18M Conv-TasNet (conf/tuning/student_tasnet.yaml)
kd_configs="conf/kd/l2_mag.yaml conf/kd/dfkd.yaml conf/kd/dispatch_l2.yaml conf/kd/dispatch_dfkd.yaml conf/kd/mssp_dfkd.yaml conf/kd/atkl.yaml conf/kd/causal_mssp_dfkd.yaml"  # the last: a causal student (streams)
local_data_opts="--valid_spk p226,p287"   # validation speakers held out of the 28 training speakers

./enh_distill.sh --fs "${fs}" --ngpu "${ngpu}" --nj 8 \
    --train_set train --valid_set valid --test_sets test \
    --teacher_config "${teacher_config}" --student_config "${student_config}" \
    --kd_configs "${kd_configs}" --local_data_opts "${local_data_opts}" "$@"
