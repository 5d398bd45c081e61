#!/usr/bin/env bash
# Create tools/venv with the pinned stack (doc/DESIGN.md §6, "The software stack") and install this
# repository in editable mode.
# Re-running is a quick no-op: a stamp file records the hash of this script, requirements.txt and
# setup.py.
set -euo pipefail
tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "${tools_dir}")"
venv="${tools_dir}/venv"
python="${PYTHON:-python3}"
stamp="${venv}/.dispatch_installed"
if [ -L "${venv}" ]; then
    # A venv linked from another checkout (tests copy the repository this way): use it as it is.
    # Installing here would repoint its editable install of this package at this copy.
    exit 0
fi
want="$(cat "${tools_dir}/install.sh" "${tools_dir}/requirements.txt" "${repo_dir}/setup.py" | sha256sum | cut -d' ' -f1)"

if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ]; then
    exit 0
fi

if ! "${python}" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    echo "install.sh: ${python} is older than Python 3.10; set PYTHON=/path/to/python3.10+ and re-run." >&2
    exit 1
fi

start=$(date +%s)
[ -x "${venv}/bin/python" ] || "${python}" -m venv "${venv}"
pip=("${venv}/bin/python" -m pip --disable-pip-version-check)
quiet() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }  # hide unreachable-index notes
quiet "${pip[@]}" install -q -r "${tools_dir}/requirements.txt"
# DNSMOS models ship in the speechmos wheel; its own pins would downgrade numpy, so no deps.
quiet "${pip[@]}" install -q --no-deps "speechmos==0.0.1.1"
quiet "${pip[@]}" install -q --no-deps --no-build-isolation -e "${repo_dir}"
"${venv}/bin/python" -c 'import torch, torchaudio, espnet2.tasks.enh, dispatch' >/dev/null 2>&1 || {
    echo "install.sh: the environment in ${venv} does not import; remove it and re-run." >&2
    exit 1
}
echo "${want}" > "${stamp}"
echo "install.sh: environment ready in ${venv} ($(( $(date +%s) - start )) s)"
