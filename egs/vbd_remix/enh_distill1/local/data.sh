#!/usr/bin/env bash
# Stage 1: ${VBD_PAIRS} (db.sh; or pass --pairs_dir) remixed into data/{train,valid,test} that share no
# utterance and no noise. Options are passed on, e.g. --mixtures 16,4,2 --snr_low -5 --snr_high 10
set -euo pipefail
if [ -f ./db.sh ]; then . ./db.sh; fi
python3 -m dispatch.bin.prep_vbd_remix --pairs_dir "${VBD_PAIRS:-}" --data_dir data \
    --audio_dir downloads/vbd_remix "$@"
