#!/usr/bin/env bash
# Issue 20 item 5, for a session with a CUDA device (not yet run: every GPU figure is unmeasured).
# One run of the CUDA bench: ConvNN (the fused Triton k-NN where Triton is installed, else the
# blocked matmul + top-k; the naive all-pairs form; the public Conv2d_NN when PEER_DIR is a clone
# of mingikang31/Convolutional-Nearest-Neighbor), self-attention against SDPA, N3 at the paper's
# setting (80 and 160 px), forward and forward + backward, with the per-stage profile.
# Writes OUT (default bench-cuda.json, and its .png); copy it to docs/results/bench-cuda.json only
# after reading it (the device's name is in its "meta"). About 5 minutes on one H100.
# The venv (NEIGHBOR_ZOO_VENV) must hold a CUDA build of torch; env.sh installs the CPU one only where torch is absent.
#   bash scripts/bench_cuda.sh                  # OUT=bench-cuda.json
#   PEER_DIR=/tmp/convnn-peer OUT=/tmp/bench-cuda.json bash scripts/bench_cuda.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
OUT="${OUT:-bench-cuda.json}"
PEER=()
if [ -n "${PEER_DIR:-}" ]; then PEER=(--peer-dir "$PEER_DIR"); fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$VENV/bin/python" -c "import torch, importlib.util as u; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'triton', u.find_spec('triton') is not None, torch.cuda.get_device_name())"
exec "$VENV/bin/neighbor-zoo" bench --device cuda --sizes 64,128,256 --n3-sizes 80,160 \
    --operators conv2d,conv_nn2d,self_attention2d,n3_block2d --backward --profile --min-run-time 0.5 \
    "${PEER[@]}" --out "$OUT"
