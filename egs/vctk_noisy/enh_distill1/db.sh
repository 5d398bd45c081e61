# shellcheck shell=bash
# Where this recipe's corpus is; local/data.sh (stage 1) reads it and says what is missing.
# VoiceBank+DEMAND as distributed (48 kHz), the folder that holds clean_trainset_28spk_wav/,
# noisy_trainset_28spk_wav/, clean_testset_wav/ and noisy_testset_wav/:
VCTK_NOISY="${VCTK_NOISY:-}"
