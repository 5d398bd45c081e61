# shellcheck shell=bash
# Command-line options for recipe scripts: source this file AFTER the option variables are defined.
#
#   stage=1           # first stage to run
#   train_set=train   # training data dir under data/
#   help_message="Usage: $0 [options] <arg>"   # optional, printed by --help
#   . utils/parse_options.sh                   # no arguments: it shifts the caller's "$@"
#
# Which options are known:
#   * If the caller sets `known_options="a b c"` before sourcing, exactly those are known.
#   * Otherwise the known options are the caller's top-level assignments `name=value` (starting at
#     column 0, not `export`/`local`) that appear ABOVE the line that sources this file. Indented
#     assignments (inside functions, ifs, loops) and `help_message`/`known_options` are not options.
#     A comment after the value (`stage=1  # first stage`) becomes the option's --help text.
#
# Behaviour:
#   --foo bar and --foo=bar set $foo; dashes map to underscores (--train-set -> $train_set).
#   An option whose default is true/false only takes true/false.
#   An unknown option fails, listing the known ones. --help prints help_message and every option
#   with its current value, then exits 0. Parsing stops at `--` or the first non-option argument;
#   the remaining arguments stay in "$@".
#
# This file is sourced, so it does not change the caller's shell options (the caller has its own
# `set -euo pipefail`); everything it defines is prefixed _po_ and unset at the end.

_po_caller="${BASH_SOURCE[1]:-$0}"
_po_line="${BASH_LINENO[0]:-0}"

# Known options and their help comments, in declaration order.
_po_names=()
declare -A _po_doc=()
if [ -n "${known_options:-}" ]; then
    # shellcheck disable=SC2206  # word splitting of the list is intended
    _po_names=(${known_options})
elif [ -f "${_po_caller}" ]; then
    _po_n=0
    while IFS= read -r _po_text || [ -n "${_po_text}" ]; do
        _po_n=$((_po_n + 1))
        # Only lines above the `. utils/parse_options.sh` line count.
        if [ "${_po_line}" -gt 0 ] && [ "${_po_n}" -ge "${_po_line}" ]; then
            break
        fi
        if [[ "${_po_text}" =~ ^([A-Za-z_][A-Za-z0-9_]*)= ]]; then
            _po_name="${BASH_REMATCH[1]}"
            case "${_po_name}" in help_message|known_options) continue ;; esac
            [ -n "${_po_doc[${_po_name}]+x}" ] && continue   # assigned twice: keep the first
            _po_names+=("${_po_name}")
            _po_doc[${_po_name}]=""
            if [[ "${_po_text}" =~ [[:space:]]#[[:space:]]?(.*)$ ]]; then
                _po_doc[${_po_name}]="${BASH_REMATCH[1]}"
            fi
        fi
    done < "${_po_caller}"
fi

_po_is_known() {  # _po_is_known NAME: true if NAME is a known option
    local n
    for n in "${_po_names[@]}"; do [ "${n}" = "$1" ] && return 0; done
    return 1
}

_po_usage() {  # print help_message and every option with its current value
    [ -n "${help_message:-}" ] && printf '%s\n\n' "${help_message}"
    echo "Options (current value in brackets):"
    local n
    for n in "${_po_names[@]}"; do
        printf '  --%-24s [%s]' "${n}" "${!n-}"
        [ -n "${_po_doc[${n}]:-}" ] && printf '  %s' "${_po_doc[${n}]}"
        printf '\n'
    done
}

while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            _po_usage
            exit 0 ;;
        --)
            shift
            break ;;
        --*=*)
            _po_key="${1%%=*}"; _po_val="${1#*=}"; shift ;;
        --*)
            _po_key="$1"
            if [ $# -lt 2 ]; then
                echo "$(basename "${_po_caller}"): option ${_po_key} needs a value (e.g. ${_po_key} VALUE)" >&2
                exit 1
            fi
            _po_val="$2"; shift 2 ;;
        *)
            break ;;
    esac
    _po_name="${_po_key#--}"
    _po_name="${_po_name//-/_}"
    if ! [[ "${_po_name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || ! _po_is_known "${_po_name}"; then
        echo "$(basename "${_po_caller}"): unknown option ${_po_key}; known options: ${_po_names[*]/#/--}" >&2
        exit 1
    fi
    # A true/false default takes only true/false.
    case "${!_po_name-}" in
        true|false)
            case "${_po_val}" in
                true|false) ;;
                *)  echo "$(basename "${_po_caller}"): option ${_po_key} takes true or false, got '${_po_val}'" >&2
                    exit 1 ;;
            esac ;;
    esac
    printf -v "${_po_name}" '%s' "${_po_val}"
done

unset -f _po_is_known _po_usage
unset _po_caller _po_line _po_names _po_doc _po_n _po_text _po_name _po_key _po_val
true
