#!/usr/bin/env bash
# Stage 1: VoiceBank+DEMAND from ${VCTK_NOISY} (db.sh) -> data/{train,valid,test} at 16 kHz.
# Options are passed on, e.g. local/data.sh --valid_spk p226,p287 --nj 4
set -euo pipefail
if [ -f ./db.sh ]; then . ./db.sh; fi
python3 -m dispatch.bin.prep_vctk --vctk_root "${VCTK_NOISY:-}" --data_dir data --audio_dir downloads/vctk_16k "$@"
