#!/usr/bin/env bash
# Stage 1: your own data. Mixtures of ${CUSTOM_CLEAN_DIR} and ${CUSTOM_NOISE_DIR} (db.sh; or pass
# --clean_dir/--noise_dir) -> data/{train,valid,test}. Options are passed on, e.g. --snr_low 0 --fs 16000
set -euo pipefail
if [ -f ./db.sh ]; then . ./db.sh; fi
python3 -m dispatch.bin.prep_custom --clean_dir "${CUSTOM_CLEAN_DIR:-}" --noise_dir "${CUSTOM_NOISE_DIR:-}" \
    --data_dir data --audio_dir downloads/custom "$@"
