# shellcheck shell=bash
# Where the corpora are on this machine. Set the one your recipe needs; local/data.sh says
# exactly which variable and which folder layout it expects when something is missing.

# VoiceBank+DEMAND as distributed (48 kHz): clean_trainset_28spk_wav/, noisy_trainset_28spk_wav/,
# clean_testset_wav/, noisy_testset_wav/
VCTK_NOISY="${VCTK_NOISY:-}"
# DNS Challenge 2020 (interspeech2020/master): datasets/clean/, datasets/noise/,
# datasets/test_set/synthetic/no_reverb/{clean,noisy}/
DNS2020="${DNS2020:-}"
# egs/custom: a folder of clean speech and a folder of noise (any rate, wav or flac, nested)
CUSTOM_CLEAN_DIR="${CUSTOM_CLEAN_DIR:-}"
CUSTOM_NOISE_DIR="${CUSTOM_NOISE_DIR:-}"
