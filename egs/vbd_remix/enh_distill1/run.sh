#!/usr/bin/env bash
# KD on real speech and real noise, at CPU size: VoiceBank+DEMAND pairs (VBD_PAIRS in db.sh) remixed
# into train/valid/test sets that share no utterance and no noise (dispatch.data.vbd_remix).
#   ./run.sh                      every stage, 3 seeds per student; RESULTS.md at the end
# Any option of enh_distill.sh can be added; ./enh_distill.sh --help lists them.
set -euo pipefail

fs=16000                              # the pairs are read (and resampled if needed) at 16 kHz
ngpu=$(utils/num_gpus.sh)             # GPUs present (0 on a CPU machine); CPU is enough for these small models
teacher_config=conf/teacher.yaml      # ~0.15M Conv-TasNet, ~760 steps
student_config=conf/student.yaml      # ~0.014M Conv-TasNet, ~285 steps for every student
kd_configs="conf/kd/l2_mag.yaml conf/kd/sisnr.yaml conf/kd/dfkd.yaml conf/kd/dispatch_l2.yaml conf/kd/dispatch_dfkd.yaml conf/kd/mssp_dfkd.yaml conf/kd/atkl.yaml"  # every method
# ablations, not in the committed table: --kd_configs "conf/kd/mssp_dfkd_raw.yaml conf/kd/mssp_dfkd_floor500.yaml conf/kd/mssp_dfkd_fixed4k.yaml"
seeds="0 1 2"                         # every student once per seed; RESULTS: mean and spread over seeds
score_opts="--dnsmos off"             # DNSMOS costs ~0.5 s per clip on 2 cores

./enh_distill.sh --fs "${fs}" --ngpu "${ngpu}" --nj 2 \
    --train_set train --valid_set valid --test_sets test \
    --teacher_config "${teacher_config}" --student_config "${student_config}" \
    --kd_configs "${kd_configs}" --seeds "${seeds}" --teacher_cache true --score_opts "${score_opts}" "$@"
