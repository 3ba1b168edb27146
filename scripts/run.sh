#!/usr/bin/env bash
# Quick start, command 1: set up and run the main job (the library's theorems).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec "$VENV/bin/neighbor-zoo" "${@:-verify}"
