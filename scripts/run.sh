#!/usr/bin/env bash
# Quick start, command 1: set up and run the main job, the default operator comparison
# (`neighbor-zoo compare`: conv2d, convnn, branching, attention, nonlocal, n3 on digits).
# Any arguments replace it: `bash scripts/run.sh verify` checks the library's theorems.
set -euo pipefail
NEIGHBOR_ZOO_EXTRAS="${NEIGHBOR_ZOO_EXTRAS:-experiments}"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# the default run: two runs at a time, one per core of a 2-core machine (README, "Comparing operators")
if [ $# -eq 0 ]; then set -- compare --jobs 2; fi
exec "$VENV/bin/neighbor-zoo" "$@"
