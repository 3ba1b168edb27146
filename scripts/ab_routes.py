"""Same-process A/B of this round's CPU routes against the routes they replace, interleaved.

    .venv/bin/python scripts/ab_routes.py [--rounds 6]

- N3Block2d at the paper's setting (B 8, C 64, k 7, 10x10 patches every 5 px, 80 px window):
  the neighbour volumes over stride cells against the patch route (``use_cells`` off).
- ConvNN2d (B 8, C 64, k 9, cosine): the blockwise gather-linear against gather-then-linear.

Each line is the median time of each route over ``--rounds`` interleaved rounds and their
ratio (new / old), forward (no grad) and forward + backward. Timings only: the equivalence of
the routes is tested in tests/neighborhoods/test_cell_volumes.py and test_gather_linear.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import operators
import neighborhoods.combiners.projection  # noqa: F401  (the module, for its route switch)
import neighborhoods.fast_paths.hard_knn  # noqa: F401

projection = sys.modules["neighborhoods.combiners.projection"]
hard_knn = sys.modules["neighborhoods.fast_paths.hard_knn"]


def _time(layer: torch.nn.Module, x: torch.Tensor, backward: bool) -> float:
    start = time.perf_counter()
    if backward:
        layer(x.clone().requires_grad_()).sum().backward()
    else:
        with torch.no_grad():
            layer(x)
    return time.perf_counter() - start


def ab(name: str, layer: torch.nn.Module, x: torch.Tensor, switch_old, switch_new, rounds: int) -> None:
    for backward in (False, True):
        times: dict[str, list[float]] = {"new": [], "old": []}
        for _ in range(rounds):
            for route, switch in (("new", switch_new), ("old", switch_old)):
                switch()
                times[route].append(_time(layer, x, backward))
        switch_new()
        new, old = statistics.median(times["new"]), statistics.median(times["old"])
        mode = "forward+backward" if backward else "forward"
        print(f"{name:<34} {mode:<17} new {new * 1e3:8.1f} ms  old {old * 1e3:8.1f} ms  ratio {new / old:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    torch.manual_seed(0)
    use_cells = projection.use_cells
    n3 = operators.create("n3_block2d", in_channels=64, window=80)
    for size in (80, 160):
        ab(f"N3Block2d {size}x{size}: cells / patches", n3, torch.randn(8, 64, size, size),
           lambda: setattr(projection, "use_cells", lambda *a: False),
           lambda: setattr(projection, "use_cells", use_cells), args.rounds)
    blocked = hard_knn.BLOCKED_MIN_ELEMENTS
    convnn = operators.create("conv_nn2d", in_channels=64, out_channels=64, k=9)
    for size in (32, 64):
        ab(f"ConvNN2d {size}x{size}: blockwise / whole", convnn, torch.randn(8, 64, size, size),
           lambda: setattr(hard_knn, "BLOCKED_MIN_ELEMENTS", 1 << 62),
           lambda: setattr(hard_knn, "BLOCKED_MIN_ELEMENTS", blocked), args.rounds)
    print(f"{torch.__version__}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
