#!/usr/bin/env bash
# Create a new recipe: egs/TEMPLATE/enh_distill1/setup.sh egs/my_corpus/enh_distill1
# It links the shared driver and helpers, copies db.sh (the recipe's corpus paths) and the mini
# recipe's model configs as a starting point, links the shared KD overlays (conf/kd/ here), copies
# the mini pair's own overlays (AT-KL layer paths, the causal student), and writes run.sh and a
# local/data.sh skeleton that says what to fill in.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "Usage: $0 <new recipe dir>   e.g. $0 egs/my_corpus/enh_distill1" >&2; exit 1
fi
template="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
main_root="$(cd "${template}/../../.." && pwd)"
dir=$1
if [ -e "${dir}" ]; then echo "$0: ${dir} already exists; choose a new directory" >&2; exit 1; fi
mkdir -p "${dir}/local" "${dir}/conf"
for f in enh_distill.sh path.sh cmd.sh; do
    ln -s "$(realpath --relative-to="${dir}" "${template}/${f}")" "${dir}/${f}"
done
ln -s "$(realpath --relative-to="${dir}" "${main_root}/utils")" "${dir}/utils"
cp "${template}/db.sh" "${dir}/db.sh"   # the recipe's own file: set its corpus paths there
mini_conf="${main_root}/egs/mini/enh_distill1/conf"
cp -r "${mini_conf}/." "${dir}/conf/"
rm -rf "${dir}/conf/bench" "${dir}/conf/kd"
mkdir -p "${dir}/conf/kd"
for overlay in "${template}"/conf/kd/*.yaml; do   # every shared overlay is linked
    ln -s "$(realpath --relative-to="${dir}/conf/kd" "${overlay}")" "${dir}/conf/kd/$(basename "${overlay}")"
done
for overlay in "${mini_conf}"/kd/*.yaml; do   # then the mini pair's own overlays are copied
    name=$(basename "${overlay}")
    if [ ! -e "${dir}/conf/kd/${name}" ]; then
        cp "${overlay}" "${dir}/conf/kd/${name}"
        # a copied kd_weight is mini's calibration, unlike that of the linked (uncalibrated) overlays
        note="# mini's calibrated weight; recalibrate it (read kd_grad_ratio in train.log)"
        sed -i "s/# as mssp_dfkd\$/${note}/" "${dir}/conf/kd/${name}"
    fi
done

cat > "${dir}/run.sh" <<'RUN'
#!/usr/bin/env bash
# ./run.sh [--stage N --stop_stage M ...]; ./enh_distill.sh --help lists every option.
set -euo pipefail
fs=16000                            # sample rate of your data (stage 2 checks it)
ngpu=$(utils/num_gpus.sh)           # GPUs per training job: every GPU present (0: CPU)
teacher_config=conf/teacher.yaml    # or --teacher_dir to import a trained ESPnet teacher
student_config=conf/student.yaml
kd_configs="conf/kd/l2_mag.yaml conf/kd/dispatch_l2.yaml conf/kd/mssp_dfkd.yaml"
./enh_distill.sh --fs "${fs}" --ngpu "${ngpu}" --train_set train --valid_set valid --test_sets test \
    --teacher_config "${teacher_config}" --student_config "${student_config}" \
    --kd_configs "${kd_configs}" "$@"
RUN
cat > "${dir}/local/data.sh" <<'DATA'
#!/usr/bin/env bash
# Stage 1: write Kaldi-style data dirs data/train, data/valid and data/test. Each holds
#   wav.scp    <utt_id> <path to the noisy wav>
#   spk1.scp   <utt_id> <path to the clean wav>   (same length as the noisy one)
#   utt2spk    <utt_id> <speaker id>   (the utt_id itself is fine)
#   spk2utt    <speaker id> <utt_id> ...
# all sorted by utt_id (LC_ALL=C sort), audio mono at the recipe's --fs. Stage 2 checks all of it.
# Corpus paths belong in ./db.sh (source it here: . ./db.sh).
# Only a folder of clean speech and a folder of noise? Use egs/custom/enh_distill1 instead.
set -euo pipefail
echo "local/data.sh: this recipe's data preparation is not written yet; edit $(pwd)/local/data.sh" >&2
exit 1
DATA
chmod +x "${dir}/run.sh" "${dir}/local/data.sh"
echo "created ${dir}: write local/data.sh, then ./run.sh"
