# shellcheck shell=bash
# Where this recipe's corpora are. The mini recipe makes its synthetic corpus itself (stage 1),
# so it needs none: nothing to set here.
