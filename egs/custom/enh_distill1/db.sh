# shellcheck shell=bash
# Where your data is; local/data.sh (stage 1) reads it and says what is missing.
# A folder of clean speech and a folder of noise (any sample rate, wav or flac, nested folders):
CUSTOM_CLEAN_DIR="${CUSTOM_CLEAN_DIR:-}"
CUSTOM_NOISE_DIR="${CUSTOM_NOISE_DIR:-}"
