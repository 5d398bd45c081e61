# shellcheck shell=bash
# Sourced by every recipe script: installs what is missing (a quick no-op once done) and
# activates the toolkit's Python environment.
MAIN_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)"
export MAIN_ROOT
"${MAIN_ROOT}/tools/install.sh"
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/activate_python.sh"
export PATH="${MAIN_ROOT}/utils:${PATH}"
export PYTHONIOENCODING=UTF-8
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
