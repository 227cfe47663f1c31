#!/usr/bin/env bash
# Option parser of csst-espnet recipes. Source it after the option defaults are set:
#
#     stage=1; use_text_lm=false; test_sets="test"
#     . scripts/parse_options.sh || exit 1
#
# Every "--name value" (or "--name=value") on the command line sets the shell variable "name";
# dashes and underscores in names are alike (--stop-stage = --stop_stage). A name with no default
# is an error that names the option; so is a missing value. An option whose default is true or
# false only takes true or false. "--help" / "-h" prints ${help_message} and exits 0. Arguments
# after the options (or after "--") stay in "$@" for the caller.

_po_prog="${0##*/}"

_po_fail() {
    echo "${_po_prog}: $*" >&2
    if [ -n "${help_message:-}" ]; then
        echo "Run '${_po_prog} --help' to see the options." >&2
    fi
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            if [ -n "${help_message:-}" ]; then printf '%s\n' "${help_message}"; else echo "no help available"; fi
            exit 0 ;;
        --) shift; break ;;
        --*=*)
            _po_name="${1%%=*}"; _po_value="${1#*=}"; shift ;;
        --*)
            _po_name="$1"
            [ $# -ge 2 ] || _po_fail "option $1 needs a value"
            _po_value="$2"; shift 2 ;;
        *) break ;;
    esac
    _po_var="${_po_name#--}"
    _po_var="${_po_var//-/_}"
    if ! [[ "${_po_var}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        _po_fail "invalid option name ${_po_name}"
    fi
    # internal variables of this parser and of the caller (leading underscore) are not options
    if [[ "${_po_var}" == _* ]] || [ -z "${!_po_var+set}" ]; then
        _po_fail "unknown option ${_po_name}"
    fi
    _po_old="${!_po_var}"
    if [ "${_po_old}" = true ] || [ "${_po_old}" = false ]; then
        if [ "${_po_value}" != true ] && [ "${_po_value}" != false ]; then
            _po_fail "option ${_po_name} takes true or false, got '${_po_value}'"
        fi
    fi
    printf -v "${_po_var}" '%s' "${_po_value}"
done
unset _po_name _po_value _po_var _po_old
true
