#!/usr/bin/env bash
# Stage 1: DNS Challenge 2020 from ${DNS2020} (db.sh): synthesised train/valid mixtures and the
# synthetic no_reverb test set -> data/{train,valid,test}. Options are passed on, e.g. --train_hours 100
set -euo pipefail
if [ -f ./db.sh ]; then . ./db.sh; fi
python3 -m dispatch.bin.prep_dns --dns_root "${DNS2020:-}" --data_dir data --audio_dir downloads/dns "$@"
