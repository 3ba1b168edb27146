"""Run by test_triton_knn.py in a subprocess with TRITON_INTERPRET=1 (so the setting cannot leak).

Compares the fused Triton kernel's neighbours with the blocked torch path on random, tied and
non-finite inputs, and prints one JSON line per case: {"case": ..., "same": bool}.
"""

import json
import os

import torch

from neighborhoods.functional import knn
from neighborhoods.functional.knn import fused_reason

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"


def compare(case, queries, keys, k, metric, **kw):
    fused = knn(queries, keys, k, metric, fused=True, **kw)
    blocked = knn(queries, keys, k, metric, fused=False, **kw)
    auto = knn(queries, keys, k, metric, **kw)  # CPU + interpreter: the automatic choice is the kernel
    same = torch.equal(fused[1], blocked[1]) and torch.equal(auto[1], fused[1])
    finite = torch.isfinite(blocked[0]) & torch.isfinite(fused[0])
    gap = (fused[0] - blocked[0])[finite].abs().max().item() if finite.any() else 0.0
    print(json.dumps({"case": case, "same": same, "max_score_gap": gap}), flush=True)


g = torch.Generator().manual_seed(0)
print(json.dumps({"case": "available", "same": fused_reason(torch.zeros(1, 1, 1), 1, "cosine") is None}))
for metric in ("cosine", "dot", "euclidean"):
    dim = 70 if metric == "cosine" else 5  # 70 > BLOCK_D = 64: the kernel's loop over feature chunks
    q = torch.randn(2, 37, dim, generator=g)
    keys = torch.randn(2, 45, dim, generator=g)
    compare(f"random {metric} D={dim}", q, keys, 6, metric)
    x = torch.randn(2, 37, 4, generator=g)
    compare(f"self-kNN {metric} exclude", x, x, 9, metric, exclude=torch.arange(37))
    mask = torch.rand(2, 37, generator=g) > 0.3
    compare(f"{metric} key_mask + exclude", x, x, 3, metric, key_mask=mask, exclude=torch.arange(37).expand(2, 37))
compare("k=1", x, x, 1, "euclidean")
for metric in ("dot", "euclidean"):  # integer features: exact scores in both paths, ties everywhere
    x = torch.randint(-1, 2, (2, 37, 3), generator=g).float()
    compare(f"tied {metric}", x, x, 9, metric, exclude=torch.arange(37))
    compare(f"tied {metric} k=20", x, x, 20, metric)
for metric in ("cosine", "dot", "euclidean"):
    x = torch.randn(2, 37, 4, generator=g)
    x[1, 5, 2] = float("nan")
    x[0, 7, 1] = float("inf")
    compare(f"non-finite {metric}", x, x, 5, metric, exclude=torch.arange(37))
