# shellcheck shell=bash
# Where this recipe's corpora are on this machine: one variable per corpus, read by local/data.sh
# (stage 1), which should say which variable and which folder layout it expects when one is missing.
# setup.sh copies this file into a new recipe, which then owns it: edit the copy, e.g.
# MY_CORPUS="${MY_CORPUS:-/data/my_corpus}"
