#!/usr/bin/env bash
# Mini recipe: every stage on a seeded synthetic corpus, on CPU, in about 15 minutes.
#   ./run.sh                                          all stages, then prints RESULTS.md
#   ./run.sh --stage 6 --kd_configs conf/kd/atkl.yaml  one more KD student, then stages 7-10
# Any option of enh_distill.sh can be added; ./enh_distill.sh --help lists them.
set -euo pipefail

fs=16000                              # the synthetic corpus is made at 16 kHz
ngpu=$(( $(utils/num_gpus.sh) > 0 ? 1 : 0 ))   # one GPU if there is one (too tiny to split); CPU is enough
teacher_config=conf/teacher.yaml      # a small Conv-TasNet (~0.1M parameters)
student_config=conf/student.yaml      # a ten-times smaller Conv-TasNet
kd_configs="conf/kd/l2_mag.yaml conf/kd/sisnr.yaml conf/kd/dispatch_l2.yaml conf/kd/mssp_dfkd.yaml"  # output KD (magnitude, SI-SNR), DISPatch, MSSP on DFKD
kd_configs+=" conf/kd/causal_mssp_dfkd.yaml"  # a causal (streaming) student, distilled with MSSP
teacher_cache=true                    # stage 6: the teacher runs once per training utterance, KD steps read its outputs
score_opts="--dnsmos off"             # DNSMOS costs ~0.5 s per short clip on 2 cores; the paper recipes keep it

./enh_distill.sh --fs "${fs}" --ngpu "${ngpu}" --nj 2 \
    --train_set train --valid_set valid --test_sets test \
    --teacher_config "${teacher_config}" --student_config "${student_config}" \
    --kd_configs "${kd_configs}" --teacher_cache "${teacher_cache}" --score_opts "${score_opts}" "$@"
