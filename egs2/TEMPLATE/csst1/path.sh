# Environment of csst-espnet recipes (sourced by csst.sh and local scripts).
# The interpreter: ${PYTHON} if set, else the repository's virtual environment, else python3.
MAIN_ROOT=${MAIN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
if [ -z "${PYTHON:-}" ]; then
    if [ -x "${MAIN_ROOT}/.venv/bin/python" ]; then
        PYTHON="${MAIN_ROOT}/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi
export MAIN_ROOT PYTHON
export PATH="$(dirname "$(command -v "${PYTHON}")"):${PATH}"
export LC_ALL=C             # Kaldi order: sort data files byte-wise
export PYTHONIOENCODING=UTF-8
export PYTHONUTF8=1
export TOKENIZERS_PARALLELISM=false
