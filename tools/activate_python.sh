#!/usr/bin/env bash
# Source this file to use the toolkit's environment (created by tools/install.sh).
_dispatch_tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -f "${_dispatch_tools}/venv/bin/activate" ]; then
    echo "activate_python.sh: ${_dispatch_tools}/venv is missing; run tools/install.sh first." >&2
    return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "${_dispatch_tools}/venv/bin/activate"
export PYTHONNOUSERSITE=1
unset _dispatch_tools
