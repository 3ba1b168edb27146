#!/usr/bin/env bash
# Quick start, command 2: set up and run the test suite.
set -euo pipefail
NEIGHBOR_ZOO_EXTRAS="${NEIGHBOR_ZOO_EXTRAS:-dev,experiments}"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest -q "$@"
