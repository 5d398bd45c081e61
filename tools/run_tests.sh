#!/usr/bin/env bash
# The test command of the README: install what is missing, then run the whole pytest suite.
#   tools/run_tests.sh [pytest args]     e.g. tools/run_tests.sh test/unit -k mssp
# Tests run in DISPATCH_TEST_WORKERS parallel processes (pytest-xdist; default 2, 0 = serial).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"${repo}/tools/install.sh"
# shellcheck disable=SC1091
. "${repo}/tools/activate_python.sh"
cd "${repo}"
exec python -m pytest -n "${DISPATCH_TEST_WORKERS:-2}" "$@"
