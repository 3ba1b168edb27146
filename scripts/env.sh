# Create (or reuse) the project's virtual environment and install neighbor-zoo into it.
# Sourced by scripts/run.sh and scripts/test.sh; installs the CPU build of torch first so
# pip does not pull a multi-GB CUDA build on machines without a GPU.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NEIGHBOR_ZOO_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
fi
# NEIGHBOR_ZOO_EXTRAS names the extras: run.sh sets "experiments" (compare needs matplotlib and
# scikit-learn), test.sh "dev,experiments", CI adds "docs,browser,gpu" (the docs build, the browser
# test, triton). Without any, the core install: every layer, verify, list and bench.
"$VENV/bin/python" -m pip install -q -e "$ROOT[${NEIGHBOR_ZOO_EXTRAS:-dev,experiments}]"
