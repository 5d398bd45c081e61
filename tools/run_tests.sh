#!/usr/bin/env bash
# The test command of the README: install what is missing, then run the whole pytest suite.
#   tools/run_tests.sh [pytest args]     e.g. tools/run_tests.sh test/unit -k mssp
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"${repo}/tools/install.sh"
# shellcheck disable=SC1091
. "${repo}/tools/activate_python.sh"
cd "${repo}"
exec python -m pytest "$@"
