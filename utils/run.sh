#!/usr/bin/env bash
# Job runner used by the recipes through cmd.sh, in the style of Kaldi's run.pl / slurm.pl.
#
# cmd.sh selects the backend, e.g.
#   export train_cmd="utils/run.sh --backend local"                 # this machine
#   export cuda_cmd="utils/run.sh --backend slurm --partition gpu"  # a slurm cluster
# and the driver calls
#   ${train_cmd} [--gpu N] [--mem 8G] [--num_nodes N] [JOB=1:N] LOG CMD [ARG...]
#
#   JOB=1:N    run N jobs; the word JOB in LOG and in CMD/ARGs is replaced by the job index
#              (any upper-case name works: SPLIT=1:4 replaces SPLIT). Without it, one job runs.
#   LOG        one log per job (its directory is created); the command line, start/end times and
#              the exit status are written into it.
#   CMD ARG..  several words are quoted one by one; a single word is run as a shell string, so
#              "a | b" pipelines work when passed as one argument.
#
# Backends:
#   local   jobs run in parallel on this machine (at most --max_jobs_run at a time, 0 = all).
#   slurm   writes LOGDIR/q/<name>.sh and submits it with `sbatch --wait` as an array 1-N with
#           --gres=gpu:G, --mem, --nodes, --cpus-per-task, --time, --partition. With --num_nodes >1
#           the command runs under `srun` once per node (for a distributed launcher).
#           --dry_run true prints the script and the sbatch command and submits nothing.
# The runner fails (exit 1) when any job fails, naming the failed logs and printing the lines of
# each (up to three) that say why (dispatch.bin.job_log errors).
set -euo pipefail

backend=local      # local or slurm
gpu=0              # GPUs per job (slurm: --gres=gpu:N; local: ignored, jobs see every GPU)
mem=""             # memory per job, e.g. 8G (slurm only)
num_nodes=1        # nodes per job (slurm only)
num_threads=1      # CPUs per task (slurm only)
max_jobs_run=0     # at most this many jobs at once (0 = no limit)
time=""            # wall-time limit per job, e.g. 2-00:00:00 (slurm only)
partition=""       # slurm partition
extra_args=""      # extra sbatch arguments, e.g. "--account=abc --qos=high"
name=""            # job name (default: the log file name)
dry_run=false      # slurm: print the generated script and command, do not submit
help_message="Usage: $0 [options] [JOB=1:N] LOG CMD [ARG...]"
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

# Optional JOB=a:b array specification.
jobvar=""; first=1; last=1
if [[ $# -gt 0 && "$1" =~ ^([A-Z][A-Z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
    jobvar="${BASH_REMATCH[1]}"; first="${BASH_REMATCH[2]}"; last="${BASH_REMATCH[3]}"
    shift
    if [ "${first}" -gt "${last}" ]; then
        echo "run.sh: bad job range ${jobvar}=${first}:${last} (the first index is above the last)" >&2
        exit 1
    fi
elif [[ $# -gt 0 && "$1" =~ ^[A-Z][A-Z0-9_]*= ]]; then
    echo "run.sh: bad job range '$1'; write it as JOB=1:N" >&2
    exit 1
fi
if [ $# -lt 2 ]; then
    echo "run.sh: expected [JOB=1:N] LOG CMD [ARG...], got: $*" >&2
    exit 1
fi
log="$1"; shift

# The command as one shell string.
if [ $# -eq 1 ]; then
    cmd="$1"
else
    cmd="$(printf '%q ' "$@")"; cmd="${cmd% }"
fi

show_errors() {  # show_errors LOG...: the lines of each failed job's log that say why
    (. "$(dirname "${BASH_SOURCE[0]}")/_py.sh" && "${PYTHON}" -m dispatch.bin.job_log errors "$@") >&2 \
        2>/dev/null || for f in "$@"; do tail -n 5 "${f}" | sed 's/^/    /' >&2; done
}

subst() {  # subst TEXT INDEX: replace the job variable by INDEX
    if [ -n "${jobvar}" ]; then printf '%s' "${1//${jobvar}/$2}"; else printf '%s' "$1"; fi
}

case "${backend}" in
local)
    status_dir="$(mktemp -d)"
    trap 'rm -rf "${status_dir}"' EXIT
    for ((i = first; i <= last; i++)); do
        if [ "${max_jobs_run}" -gt 0 ]; then
            while [ "$(jobs -rp | wc -l)" -ge "${max_jobs_run}" ]; do wait -n || true; done
        fi
        job_log="$(subst "${log}" "${i}")"
        job_cmd="$(subst "${cmd}" "${i}")"
        mkdir -p "$(dirname "${job_log}")"
        (
            {
                echo "# ${job_cmd}"
                echo "# Started at $(date)"
            } > "${job_log}"
            set +e
            bash -c "${job_cmd}" >> "${job_log}" 2>&1
            rc=$?
            echo "# Ended (code ${rc}) at $(date)" >> "${job_log}"
            echo "${rc}" > "${status_dir}/${i}"
        ) &
    done
    wait
    failed=(); failed_logs=()
    for ((i = first; i <= last; i++)); do
        rc="$(cat "${status_dir}/${i}" 2>/dev/null || echo 1)"
        [ "${rc}" = 0 ] || { failed+=("$(subst "${log}" "${i}") (exit ${rc})"); failed_logs+=("$(subst "${log}" "${i}")"); }
    done
    if [ ${#failed[@]} -gt 0 ]; then
        echo "run.sh: ${#failed[@]} of $((last - first + 1)) jobs failed; see: ${failed[*]}" >&2
        show_errors "${failed_logs[@]:0:3}"
        exit 1
    fi
    ;;
slurm)
    [ -n "${name}" ] || name="$(basename "${log}" .log)"; name="${name//${jobvar:-JOB}/}"
    logdir="$(dirname "${log}")"
    script="${logdir}/q/${name%.}.sh"
    array_id='${SLURM_ARRAY_TASK_ID}'
    sbatch_opts=(--job-name="${name%.}" --array="${first}-${last}" --nodes="${num_nodes}"
                 --ntasks-per-node=1 --cpus-per-task="${num_threads}"
                 --output="$(subst "${log}" "%a")")
    [ "${max_jobs_run}" -gt 0 ] && sbatch_opts[1]="--array=${first}-${last}%${max_jobs_run}"
    [ "${gpu}" -gt 0 ] && sbatch_opts+=(--gres="gpu:${gpu}")
    [ -n "${mem}" ] && sbatch_opts+=(--mem="${mem}")
    [ -n "${time}" ] && sbatch_opts+=(--time="${time}")
    [ -n "${partition}" ] && sbatch_opts+=(--partition="${partition}")
    # shellcheck disable=SC2206  # extra_args is a list of words
    [ -n "${extra_args}" ] && sbatch_opts+=(${extra_args})
    job_cmd="$(subst "${cmd}" "${array_id}")"
    launcher=""
    [ "${num_nodes}" -gt 1 ] && launcher="srun --nodes=${num_nodes} --ntasks-per-node=1 "
    body="#!/usr/bin/env bash
# generated by utils/run.sh; job index = \${SLURM_ARRAY_TASK_ID}
cd $(printf '%q' "${PWD}")
printf '%s\\n' $(printf '%q' "# ${job_cmd}")
echo \"# Started at \$(date) on \$(hostname)\"
${launcher}bash -c $(printf '%q' "${job_cmd}")
rc=\$?
echo \"# Ended (code \${rc}) at \$(date)\"
exit \${rc}"
    if [ "${dry_run}" = true ]; then
        echo "# ${script}"
        echo "${body}"
        echo "# submit:"
        echo "sbatch --wait ${sbatch_opts[*]} ${script}"
        exit 0
    fi
    command -v sbatch > /dev/null || {
        echo "run.sh: sbatch not found; use --backend local in cmd.sh or run on a slurm login node" >&2
        exit 1
    }
    mkdir -p "${logdir}/q"
    printf '%s\n' "${body}" > "${script}"
    if ! sbatch --wait "${sbatch_opts[@]}" "${script}" > "${logdir}/q/${name%.}.sbatch.log" 2>&1; then
        failed=()
        for ((i = first; i <= last; i++)); do
            job_log="$(subst "${log}" "${i}")"
            grep -q '^# Ended (code 0)' "${job_log}" 2>/dev/null || failed+=("${job_log}")
        done
        echo "run.sh: slurm job ${name%.} failed; see: ${failed[*]:-${logdir}/q/${name%.}.sbatch.log}" >&2
        [ ${#failed[@]} -gt 0 ] && show_errors "${failed[@]:0:3}"
        exit 1
    fi
    ;;
*)
    echo "run.sh: unknown backend '${backend}'; use --backend local or --backend slurm" >&2
    exit 1 ;;
esac
