#!/usr/bin/env bash
# Stage 1: the seeded synthetic corpus in data/{train,valid,test} (audio in data/wav); downloads nothing.
# Options are passed on, e.g. local/data.sh --n_train 20 --n_valid 4 --n_test 4 --duration 1.0
set -euo pipefail
python3 -m dispatch.bin.make_mini_corpus --data_dir data --audio_dir data/wav --nj 2 "$@"
