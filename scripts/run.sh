#!/usr/bin/env bash
# Quick start, command 1: set up and run the main job, the default operator comparison
# (`neighbor-zoo compare`: conv2d, convnn, branching, attention, nonlocal, n3 on digits).
# Any arguments replace it: `bash scripts/run.sh verify` checks the library's theorems.
set -euo pipefail
NEIGHBOR_ZOO_EXTRAS="${NEIGHBOR_ZOO_EXTRAS:-experiments}"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec "$VENV/bin/neighbor-zoo" "${@:-compare}"
