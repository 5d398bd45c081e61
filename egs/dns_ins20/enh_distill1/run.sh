#!/usr/bin/env bash
# DNS Challenge 2020 (ESPnet's dns_ins20): set DNS2020 in db.sh to the challenge's folder.
# Training mixtures are synthesised from datasets/clean and datasets/noise; the test set is the
# synthetic no_reverb one. Published ESPnet rows are added to RESULTS.md.
set -euo pipefail

fs=16000                              # DNS2020 is 16 kHz
ngpu=$(utils/num_gpus.sh)             # GPUs per training job: every GPU present (0: CPU)
teacher_config=conf/teacher.yaml      # Conv-TasNet, paper size (conf/tuning/teacher_tasnet.yaml)
student_config=conf/student.yaml      # 0.18M Conv-TasNet (conf/tuning/student_tasnet.yaml)
kd_configs="conf/kd/l2_mag.yaml conf/kd/dfkd.yaml conf/kd/dispatch_l2.yaml conf/kd/dispatch_dfkd.yaml conf/kd/mssp_dfkd.yaml conf/kd/atkl.yaml conf/kd/causal_mssp_dfkd.yaml"  # the last: a causal student (streams)
local_data_opts="--train_hours 100 --snr_low 0 --snr_high 40 --seed 0"   # mixture synthesis
published="../../../dispatch/metrics/published/dns_ins20.yaml"          # ESPnet's DNS2020 rows

./enh_distill.sh --fs "${fs}" --ngpu "${ngpu}" --nj 8 \
    --train_set train --valid_set valid --test_sets test \
    --teacher_config "${teacher_config}" --student_config "${student_config}" \
    --kd_configs "${kd_configs}" --local_data_opts "${local_data_opts}" --published "${published}" "$@"
