"""``bench --profile``: where a layer's forward time goes, by the stages the library labels.

The fast paths, the hard k-NN search, the explicit :class:`~neighborhoods.Neighborhood` path
(``Neighborhood.aggregate``, the ``Conv1D`` and ``Projection`` combiners, the dense-affinity
selector) and N3's functions (candidate distances, continuous k-NN, im2col / col2im,
candidate sums) mark their work with :func:`neighborhoods.functional.stages.stage`
(similarity, selection, gathering, combining, fused); here each variant runs a few forward
calls under ``torch.profiler`` and every stage's share is its labelled CPU time over the
calls' wall time. ``other`` is the rest: projections (attention's ``W_q``, ``W_k``, ``W_v``,
``W_o``), learned networks (N3's embedding and temperature CNNs), normalisation layers,
reshapes and Python.

The labelled ranges must not nest (an inner range would be counted twice);
``tests/comparisons/bench/test_bench.py`` checks that for N3 and the reference ConvNN.
Shares are of wall time, so a loaded machine shifts them: with two threads and a busy
second core, parallel kernels (the N3 CNNs) can stall many times over.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from neighborhoods.functional.stages import PREFIX, STAGES

from .workloads import Workload

#: forward calls profiled per variant (after one warm-up call)
CALLS = 3
#: the variants profiled: the layer as called, and its explicit-Neighborhood path
VARIANTS = ("fast", "reference")


def stage_shares(w: Workload) -> list[dict[str, Any]]:
    """One row per profiled variant of ``w``: ``{"operator", "size", "variant", "time_s", "shares"}``.

    ``shares`` maps each stage of :data:`~neighborhoods.functional.stages.STAGES` and ``other``
    to its fraction of the forward time (the stages' labelled ranges do not nest, so the
    fractions add up to 1, up to the profiler's own cost).
    """
    rows = []
    for v in w.variants:
        if v.name not in VARIANTS or v.skip is not None:
            continue
        with torch.no_grad():
            v.forward(w.x)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                start = time.perf_counter()
                for _ in range(CALLS):
                    v.forward(w.x)
                wall = time.perf_counter() - start
        spent = {s: 0.0 for s in STAGES}
        for event in prof.events():
            if event.name.startswith(PREFIX) and event.name[len(PREFIX):] in spent:
                spent[event.name[len(PREFIX):]] += event.cpu_time_total * 1e-6  # microseconds
        shares = {s: min(t / wall, 1.0) for s, t in spent.items()}
        shares["other"] = max(0.0, 1.0 - sum(shares.values()))
        rows.append({"operator": w.operator, "size": w.size, "variant": v.name, "time_s": wall / CALLS,
                     "shares": shares})
    return rows


__all__ = ["CALLS", "VARIANTS", "stage_shares"]
