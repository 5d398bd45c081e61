# shellcheck shell=bash
# Where this recipe's data is. VBD_PAIRS: a folder with noisy/ and clean/ wavs of the same names,
# e.g. the VoiceBank+DEMAND test set (noisy_testset_wav -> noisy/, clean_testset_wav -> clean/).
VBD_PAIRS="${VBD_PAIRS:-}"
