#!/usr/bin/env bash
# The shared stage driver of every enh_distill1 recipe (doc/DESIGN.md §4, "The driver's stages").
# Recipes call it from run.sh with their options; the logic lives in the Python library, behind
# the entry points under dispatch/bin/.
#
#   1 data prep (local/data.sh)      5 student without KD           9 RESULTS.md
#   2 data checks -> dump/raw         6 one KD student per config   10 pack the best KD student (.zip, .onnx)
#   3 shape files                     7 export + inference
#   4 teacher: train or import        8 scoring + model figures
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}) $*" >&2; }

stage=1                   # first stage to run
stop_stage=10             # last stage to run
ngpu=0                    # GPUs per training job (0: CPU); >1 uses ESPnet's DDP launcher
num_nodes=1               # machines per training job (>1 needs the slurm backend in cmd.sh)
nj=2                      # parallel jobs for data checks, inference and scoring
fs=16000                  # sample rate of every model and data dir
train_set=train           # training data dir under data/
valid_set=valid           # validation data dir under data/
test_sets="test"          # test data dirs under data/, space separated
teacher_config=conf/teacher.yaml   # teacher training config (stage 4)
student_config=conf/student.yaml   # student config, shared by the no-KD baseline and KD students
kd_configs=""             # KD overlays, space separated; one KD student each (exp/kd_<name>)
kd_sweep=""               # grid over each kd_configs overlay, e.g. "kd_weight=1,10 k=0.5,0.8": one KD student per point instead (exp/kd_<name>__kd_weight10_k0.5); keys: kd_* options or kd_loss_conf keys
seeds=""                  # train every student once per seed (ESPnet --seed) as exp/<system>_seed<N>, e.g. "0 1 2" (the teacher once); RESULTS: mean ± std over seeds
teacher_dir=""            # import a trained ESPnet teacher (exp dir or export dir) instead of training
teacher_model=valid.si_snr_loss.best.pth  # the teacher's model file name inside its dir
inference_model=valid.si_snr_loss.best.pth  # model file used for inference and export
train_args=""             # extra options for every training job, e.g. "--max_epoch 5"
teacher_args=""           # extra options for the teacher's training only (stage 4), after train_args
student_args=""           # extra options for the no-KD student and every KD student (stages 5-6)
kd_args=""                # extra options for the KD students only (stage 6), after student_args
tag=""                    # experiment tag: systems go to <expdir>/<tag>/, apart from runs with other options
resume=false              # with --force true: continue training from the last checkpoint, not from scratch
teacher_cache=false       # stage 6: run the teacher once per training utterance and train from its stored outputs
teacher_cache_dtype=float32  # stage 6: teacher-cache storage; float16 halves the disk (115 MB per hour of 16 kHz audio)
local_data_opts=""        # options for local/data.sh
score_opts=""             # extra options for dispatch.bin.score, e.g. "--dnsmos off"
auto_fix=false            # stage 2: resample/downmix/trim/drop bad utterances instead of stopping
min_wav_duration=0.1      # stage 2: drop training and validation utterances shorter than this (s)
max_wav_duration=20       # stage 2: drop training and validation utterances longer than this (s; 0: keep)
speed_perturb_factors=""  # stage 2: e.g. "0.9 1.0 1.1": train on <train_set>_sp, each utterance at each speed
inference_args="--normalize_output_wav true"  # stage 7: options for dispatch.bin.enh_inference (ESPnet's)
gpu_inference=""          # stage 7: true/false, inference on a GPU; empty: true when --ngpu > 0
inference_nj=""           # stage 7: parallel inference jobs per test set; empty: --nj
score_metric=PESQ_WB      # stage 10: the metric that picks the best KD student
published=""              # stage 9: YAML files of published rows to add to RESULTS.md
expdir=exp                # where systems are written
dumpdir=dump              # where checked data dirs are written
force=false               # re-run stages that have already finished (training: from scratch unless --resume true)
dry_run=false             # print the commands instead of running them
help_message="Usage: $0 [options]   (every option is --name value)"
. utils/parse_options.sh
. ./path.sh
. ./cmd.sh
[ -n "${tag}" ] && expdir="${expdir}/${tag}"
train_dump="${train_set}${speed_perturb_factors:+_sp}"   # the training data dir under dump/raw
[ -n "${gpu_inference}" ] || gpu_inference=$([ "${ngpu}" -gt 0 ] && echo true || echo false)
inf_gpu=$("${gpu_inference}" && echo 1 || echo 0); inference_nj=${inference_nj:-${nj}}

for s in ${seeds}; do
    [[ "${s}" =~ ^[0-9]+$ ]] || { log "error: --seeds takes non-negative integers, e.g. \"0 1 2\"; got '${s}'"; exit 1; }
done
if [ -n "${kd_sweep}" ]; then  # the grid points' overlays replace kd_configs (dispatch.kd.sweep)
    sweep_opts=(); "${dry_run}" && sweep_opts=(--dry_run)
    # shellcheck disable=SC2086
    kd_configs=$(python3 -m dispatch.bin.kd_sweep --sweep "${kd_sweep}" \
        --out_dir "${expdir}/sweep_overlays" "${sweep_opts[@]}" ${kd_configs})
fi
# seed_runs NAME: a student system's run dirs under exp/: NAME_seed<N> per --seeds value, else NAME
seed_runs() { if [ -z "${seeds}" ]; then echo "$1"; else for s in ${seeds}; do echo "$1_seed${s}"; done; fi; }
seed_opt() { if [ -n "${seeds}" ]; then echo "--seed ${1##*_seed}"; fi; }  # seed_opt RUN: ESPnet's --seed
systems() { echo teacher; seed_runs student_nokd; for c in ${kd_configs}; do seed_runs "kd_$(basename "${c%.*}")"; done; }
# run CMD...: print it under --dry_run, else run it (the console is spared known-harmless
# dependency noise: nltk's offline notes, FutureWarnings; job logs keep everything)
quiet() { python3 -m dispatch.bin.job_log filter; }
run() { if "${dry_run}"; then printf '%q ' "$@"; echo; else "$@" > >(quiet) 2> >(quiet >&2); fi; }
# preflight [--data DIR --shape_file F ...] [--job OPTION CONFIG --job_args=ARGS ...]: stop before training
# with one line per problem (--ngpu above the GPUs present, clips shorter than chunk_length, ...)
preflight() {
    "${dry_run}" || python3 -m dispatch.bin.preflight check --ngpu "${ngpu}" --train_cmd "${train_cmd}" \
        --fs "${fs}" --teacher_cache "${teacher_cache}" --speed_perturb_factors "${speed_perturb_factors}" "$@"
}
# finished DIR [--files F ... --opts=O --name M]: DIR/.done (or DIR/M) is there and was made from
# these files (hashed) and options; mark records them (dispatch.bin.stage_marker)
finished() { ! "${force}" && python3 -m dispatch.bin.stage_marker check "$@"; }
mark() { "${dry_run}" || python3 -m dispatch.bin.stage_marker mark "$@"; }
in_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }
# model_files RUN: set config/model (the trained pair of exp/RUN) and stock_config/stock_model (what
# inference, scoring and the model figures load: a KD student's export), as dispatch.results.layout says
model_files() {
    local answer; answer=$(python3 -m dispatch.bin.query files "${expdir}" "$1" \
        --inference_model "${inference_model}" --teacher_model "${teacher_model}")
    IFS=$'\t' read -r config model stock_config stock_model <<< "${answer}"
}

# Training options shared by the teacher, the no-KD student and the KD students.
data_opts=()
for s in train valid; do
    d="${dumpdir}/raw/$([ "$s" = train ] && echo "${train_dump}" || echo "${valid_set}")"
    data_opts+=(--"${s}"_data_path_and_name_and_type "${d}/wav.scp,speech_mix,sound"
                --"${s}"_data_path_and_name_and_type "${d}/spk1.scp,speech_ref1,sound"
                --"${s}"_shape_file "${dumpdir}/stats/${s}/speech_mix_shape")
done
dist_opts=(--ngpu "${ngpu}")
if [ "${num_nodes}" -gt 1 ]; then
    dist_opts+=(--multiprocessing_distributed true --dist_launcher slurm
                --dist_init_method "file://$(pwd)/${expdir}/.dist_init_$$")
elif [ "${ngpu}" -gt 1 ]; then
    dist_opts+=(--multiprocessing_distributed true)
fi
# train DIR CONFIG ENTRY MODEL [ARGS...]: one ESPnet training job, logged in DIR/train.log, that
# must leave DIR/MODEL behind; changed options for DIR are refused unless --force true
train() {
    local dir=$1 config=$2 entry=$3 model=$4 role=${student_args}; shift 4
    [ "${dir##*/}" = teacher ] && role=${teacher_args}
    [ "${entry}" = dispatch.bin.enh_distill_train ] && role="${student_args} ${kd_args}"
    run python3 -m dispatch.bin.preflight train_dir "${dir}" --config "${config}" --force "${force}" \
        --resume "${resume}" --opts="$* ${train_args} ${role} ${data_opts[*]}"
    if finished "${dir}"; then log "${dir}: already trained (--force true to redo)"; return; fi
    log "training ${dir} with ${config}"
    # shellcheck disable=SC2086
    run ${train_cmd} --gpu "${ngpu}" --num_nodes "${num_nodes}" "${dir}/train.log" \
        python3 -m "${entry}" --config "${config}" --output_dir "${dir}" --sample_rate "${fs}" \
        --resume true "${dist_opts[@]}" "${data_opts[@]}" "$@" ${train_args} ${role}
    if ! "${dry_run}" && [ ! -e "${dir}/${model}" ]; then
        log "error: training left no ${dir}/${model}; see ${dir}/train.log (ESPnet's chunk iterator" \
            "skips utterances not longer than chunk_length, and stops when no step was valid)"
        python3 -m dispatch.bin.job_log errors "${dir}/train.log" >&2 || true
        exit 1
    fi
    mark "${dir}"
}

{ in_stage 4 || in_stage 5 || in_stage 6; } && preflight   # --ngpu, before data preparation
if in_stage 1; then
    log "stage 1: data preparation"
    # shellcheck disable=SC2086
    run local/data.sh ${local_data_opts}
fi

if in_stage 2; then
    log "stage 2: data checks -> ${dumpdir}/raw"
    fix=(); "${auto_fix}" && fix=(--auto_fix)
    for dset in ${train_set} ${valid_set} ${test_sets}; do
        finished "${dumpdir}/raw/${dset}" && continue
        [ -d "data/${dset}" ] || { log "error: data/${dset} is missing; run stage 1 (local/data.sh) first"; exit 1; }
        run python3 -m dispatch.bin.check_data "data/${dset}" --fs "${fs}" --nj "${nj}" \
            --out_dir "${dumpdir}/raw/${dset}" "${fix[@]}"
        [[ " ${test_sets} " = *" ${dset} "* ]] || run python3 -m dispatch.bin.datadir filter_durations \
            "${dumpdir}/raw/${dset}" --min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}"
        mark "${dumpdir}/raw/${dset}"
    done
    if [ -n "${speed_perturb_factors}" ] && ! finished "${dumpdir}/raw/${train_dump}"; then
        # shellcheck disable=SC2086
        run python3 -m dispatch.bin.datadir speed_perturb "${dumpdir}/raw/${train_set}" \
            "${dumpdir}/raw/${train_dump}" --factors ${speed_perturb_factors}
        mark "${dumpdir}/raw/${train_dump}"
    fi
fi

if in_stage 3; then
    log "stage 3: shape files -> ${dumpdir}/stats"
    run python3 -m dispatch.bin.collect_shapes "${dumpdir}/raw/${train_dump}" "${dumpdir}/stats/train"
    run python3 -m dispatch.bin.collect_shapes "${dumpdir}/raw/${valid_set}" "${dumpdir}/stats/valid"
fi

if in_stage 4 || in_stage 5 || in_stage 6; then   # chunk lengths against the data, before any training
    pf_jobs=(); in_stage 4 && [ -z "${teacher_dir}" ] && pf_jobs=(--job teacher_args "${teacher_config}" --job_args="${train_args} ${teacher_args}")
    { in_stage 5 || in_stage 6; } && pf_jobs+=(--job student_args "${student_config}" --job_args="${train_args} ${student_args}")
    preflight --data "${dumpdir}/raw/${train_dump}" --shape_file "${dumpdir}/stats/train/speech_mix_shape" \
        --data "${dumpdir}/raw/${valid_set}" --shape_file "${dumpdir}/stats/valid/speech_mix_shape" "${pf_jobs[@]}"
fi

if in_stage 4; then
    if [ -n "${teacher_dir}" ]; then
        log "stage 4: importing the teacher from ${teacher_dir}"
        run python3 -m dispatch.bin.import_teacher "${teacher_dir}" --model_file "${teacher_model}" \
            --out "${expdir}/teacher"
    else
        log "stage 4: training the teacher"
        train "${expdir}/teacher" "${teacher_config}" dispatch.bin.enh_train "${teacher_model}"
    fi
fi

if in_stage 5; then
    log "stage 5: the student without KD"
    for sys in $(seed_runs student_nokd); do
        # shellcheck disable=SC2046
        train "${expdir}/${sys}" "${student_config}" dispatch.bin.enh_train "${inference_model}" $(seed_opt "${sys}")
    done
fi

if in_stage 6; then
    cache="${expdir}/teacher/cache_${train_set}"
    if "${teacher_cache}" && ! finished "${cache}"; then
        log "stage 6: caching the teacher's outputs on ${train_set} -> ${cache}"
        run python3 -m dispatch.bin.cache_teacher --teacher_config "${expdir}/teacher/config.yaml" \
            --teacher_model_file "${expdir}/teacher/${teacher_model}" \
            --data_dir "${dumpdir}/raw/${train_set}" --out_dir "${cache}" --ngpu "$(( ngpu > 0 ? 1 : 0 ))" \
            --nj "$(( ngpu > 0 ? 1 : nj ))" --dtype "${teacher_cache_dtype}"
        mark "${cache}"
    fi
    for kd in ${kd_configs}; do
      cache_opts=()  # a loss that taps the teacher's features (AT-KL) cannot train from the cache's outputs
      use_cache=false
      if "${teacher_cache}"; then  # a sweep point's overlay exists only once a real run wrote it
          if "${dry_run}" && [ ! -e "${kd}" ]; then use_cache=true
          else use_cache=$(python3 -m dispatch.bin.query teacher_cache "${kd}"); fi
      fi
      "${use_cache}" && cache_opts=(--train_data_path_and_name_and_type "${cache}/teacher1.scp,teacher_ref1,kaldi_ark")
      for sys in $(seed_runs "kd_$(basename "${kd%.*}")"); do
        dir="${expdir}/${sys}"
        log "stage 6: KD student ${dir} (${kd})"
        run python3 -m dispatch.bin.merge_config "${student_config}" "${kd}" --out "${dir}/config_in.yaml"
        # shellcheck disable=SC2046
        train "${dir}" "${dir}/config_in.yaml" dispatch.bin.enh_distill_train "${inference_model}" \
            --teacher_config "${expdir}/teacher/config.yaml" \
            --teacher_model_file "${expdir}/teacher/${teacher_model}" "${cache_opts[@]}" $(seed_opt "${sys}")
      done
    done
fi

if in_stage 7; then
    for sys in $(systems); do
        dir="${expdir}/${sys}"
        model_files "${sys}"
        if [ "${stock_model}" != "${model}" ]; then  # a KD student: the student alone, as a stock ESPnet model
            export_dir=$(dirname "${stock_model}"); src=(--files "${model}" "${config}")
            if ! finished "${export_dir}" "${src[@]}"; then
                run python3 -m dispatch.bin.export_student "${dir}" --model_file "${inference_model}" \
                    --out "${export_dir}"
                mark "${export_dir}" "${src[@]}"
            fi
        fi
        for dset in ${test_sets}; do
            out="${dir}/enhanced_${dset}"
            made_from=(--files "${stock_model}" "${stock_config}" "${dumpdir}/raw/${dset}/wav.scp" --opts="${inference_args}")
            finished "${out}" "${made_from[@]}" && continue
            log "stage 7: ${sys} enhances ${dset}"
            n_utt=$(wc -l < "${dumpdir}/raw/${dset}/wav.scp"); jobs=$(( inference_nj < n_utt ? inference_nj : n_utt ))
            run python3 -m dispatch.bin.scp split "${dumpdir}/raw/${dset}/wav.scp" \
                $(for n in $(seq "${jobs}"); do echo "${out}/split/keys.${n}.scp"; done)
            # shellcheck disable=SC2086
            run ${decode_cmd} --gpu "${inf_gpu}" JOB=1:"${jobs}" "${out}/log/inference.JOB.log" \
                python3 -m dispatch.bin.enh_inference --ngpu "${inf_gpu}" --fs "${fs}" \
                --train_config "${stock_config}" --model_file "${stock_model}" \
                --data_path_and_name_and_type "${dumpdir}/raw/${dset}/wav.scp,speech_mix,sound" \
                --key_file "${out}/split/keys.JOB.scp" --output_dir "${out}/output.JOB" ${inference_args}
            run python3 -m dispatch.bin.scp merge "${out}/spk1.scp" \
                $(for n in $(seq "${jobs}"); do echo "${out}/output.${n}/spk1.scp"; done)
            mark "${out}" "${made_from[@]}"
        done
    done
fi

if in_stage 8; then
    for sys in noisy $(systems); do
        for dset in ${test_sets}; do
            out="${expdir}/${sys}/scoring_${dset}"
            inf="${expdir}/${sys}/enhanced_${dset}/spk1.scp"
            [ "${sys}" = noisy ] && inf="${dumpdir}/raw/${dset}/wav.scp"
            # the enhanced audio's marker holds its model's hash: a retrained system is re-scored
            made_from=(--files "${dumpdir}/raw/${dset}/spk1.scp" "${inf}" --opts="${score_opts}")
            [ "${sys}" = noisy ] || made_from+=(--files "${expdir}/${sys}/enhanced_${dset}/.done")
            finished "${out}" "${made_from[@]}" && continue
            log "stage 8: scoring ${sys} on ${dset}"
            # shellcheck disable=SC2086
            run python3 -m dispatch.bin.score --ref_scp "${dumpdir}/raw/${dset}/spk1.scp" \
                --inf_scp "${inf}" --out_dir "${out}" --nj "${nj}" --fs "${fs}" ${score_opts}
            mark "${out}" "${made_from[@]}"
        done
        [ "${sys}" = noisy ] && continue
        model_files "${sys}"
        stats_from=(--name .model_stats.done --files "${stock_config}" "${stock_model}")
        finished "${expdir}/${sys}" "${stats_from[@]}" && continue
        run python3 -m dispatch.bin.model_stats --config "${stock_config}" --model_file "${stock_model}" \
            --fs "${fs}" --out "${expdir}/${sys}/model_stats.json"
        mark "${expdir}/${sys}" "${stats_from[@]}"
    done
fi

if in_stage 9; then
    log "stage 9: RESULTS.md"
    pub=(); for p in ${published}; do pub+=(--published "${p}"); done
    # shellcheck disable=SC2086
    run python3 -m dispatch.bin.make_results "${expdir}" --test_sets ${test_sets} \
        --nokd student_nokd --out_dir . "${pub[@]}"
    "${dry_run}" || cat RESULTS.md
fi

if in_stage 10; then
    log "stage 10: packing the best KD student (ESPnet zip + .onnx)"
    # shellcheck disable=SC2086
    run python3 -m dispatch.bin.pack_student "${expdir}" --test_sets ${test_sets} \
        --metric "${score_metric}" --out "${expdir}/packed" --onnx
fi
log "finished stages ${stage}-${stop_stage}"
