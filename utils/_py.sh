# shellcheck shell=bash
# Sourced by the utils/*.sh wrappers: puts the repository on PYTHONPATH and picks the Python
# ($PYTHON if set, else python3 from PATH, which path.sh points at tools/venv).
_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${_repo}${PYTHONPATH:+:${PYTHONPATH}}"
PYTHON="${PYTHON:-python3}"
