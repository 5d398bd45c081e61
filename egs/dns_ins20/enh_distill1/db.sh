# shellcheck shell=bash
# Where this recipe's corpus is; local/data.sh (stage 1) reads it and says what is missing.
# DNS Challenge 2020 (interspeech2020/master), the folder that holds datasets/clean/,
# datasets/noise/ and datasets/test_set/synthetic/no_reverb/{clean,noisy}/:
DNS2020="${DNS2020:-}"
