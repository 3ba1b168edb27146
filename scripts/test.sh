#!/usr/bin/env bash
# Quick start, command 2: set up and run the test suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest -q "$@"
