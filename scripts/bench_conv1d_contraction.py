"""Ways to compute ConvNN's combine step ``y_q = b + sum_s W_s x[index[q, s]]``, timed side by side.

* ``gather_einsum``: the (B, N, k, C) gather, permuted to (B, N, C, k), one einsum (the form
  before issue 10; the poster's ``V'`` then ``Conv1D(kernel=k, stride=k)``);
* ``gather_matmul``: the same gather by ``index_select`` on flat rows, read as (B*N, k*C)
  without a permute, one matmul with the weight laid out (k*C, C_out);
* ``slot_loop``: no (B, N, k, C) tensor in the forward: k gathers of (B, N, C), each
  multiplied by its slot's weight and accumulated;
* ``project_gather``: project every token by every slot's weight first (B, N, k, C_out), then
  gather slot s of neighbour index[q, s] and sum over s.

Runs are interleaved and medians reported; every variant is checked against the first.

    .venv/bin/python scripts/bench_conv1d_contraction.py --sizes 32 64 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from einops import rearrange


def gather_einsum(x, index, weight, bias):
    b, n, c = x.shape
    q, s = index.shape[1:]
    v = x.gather(1, index.reshape(b, q * s, 1).expand(-1, -1, c)).reshape(b, q, s, c)
    v = rearrange(v, "b q s c -> b q c s")
    return torch.einsum("bqcs,ocs->bqo", v, weight) + bias


def _flat_rows(index, n):
    b = index.shape[0]
    return (index + n * torch.arange(b, device=index.device).view(b, 1, 1)).reshape(-1)


def gather_matmul(x, index, weight, bias):
    b, n, c = x.shape
    q, s = index.shape[1:]
    v = x.reshape(b * n, c).index_select(0, _flat_rows(index, n)).view(b * q, s * c)
    w = weight.permute(2, 1, 0).reshape(s * c, -1)  # (s c, o), rows in v's (s, c) order
    return torch.addmm(bias, v, w).view(b, q, -1)


def slot_loop(x, index, weight, bias):
    b, n, c = x.shape
    q, s = index.shape[1:]
    rows = x.reshape(b * n, c)
    flat = (index + n * torch.arange(b, device=index.device).view(b, 1, 1)).reshape(b * q, s)
    y = bias.expand(b * q, -1)
    for slot in range(s):
        y = torch.addmm(y, rows.index_select(0, flat[:, slot]), weight[:, :, slot].T)
    return y.view(b, q, -1)


def project_gather(x, index, weight, bias):
    b, n, c = x.shape
    q, s = index.shape[1:]
    o = weight.shape[0]
    p = (x.reshape(b * n, c) @ weight.permute(1, 2, 0).reshape(c, s * o)).view(b * n * s, o)
    slots = torch.arange(s, device=index.device)
    flat = (_flat_rows(index, n).view(b * q, s) * s + slots).reshape(-1)
    return p.index_select(0, flat).view(b * q, s, o).sum(1).view(b, q, o) + bias


VARIANTS = {f.__name__: f for f in (gather_einsum, gather_matmul, slot_loop, project_gather)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--k", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    for size in args.sizes:
        n = size * size
        x = torch.randn(args.batch, n, args.channels, requires_grad=True)
        index = torch.randint(0, n, (args.batch, n, args.k))
        weight = torch.randn(args.channels, args.channels, args.k, requires_grad=True)
        bias = torch.randn(args.channels, requires_grad=True)
        ref = gather_einsum(x, index, weight, bias)
        grads = torch.autograd.grad(ref.square().sum(), (x, weight, bias))
        for name, f in VARIANTS.items():
            y = f(x, index, weight, bias)
            g = torch.autograd.grad(y.square().sum(), (x, weight, bias))
            err = max((y - ref).abs().max().item(), *((a - r).abs().max().item() / r.abs().max().item()
                                                       for a, r in zip(g, grads)))
            print(f"{size}x{size} {name}: max deviation from gather_einsum {err:.2g}")
        for backward in (False, True):
            times = {name: [] for name in VARIANTS}
            for _ in range(args.repeats + 1):  # the first round warms up
                for name, f in VARIANTS.items():
                    start = time.perf_counter()
                    if backward:
                        f(x, index, weight, bias).sum().backward()
                    else:
                        with torch.no_grad():
                            f(x, index, weight, bias)
                    times[name].append(time.perf_counter() - start)
            mode = "forward+backward" if backward else "forward"
            line = "  ".join(f"{name} {1e3 * statistics.median(t[1:]):.1f} ms" for name, t in times.items())
            print(f"{size}x{size} {mode}: {line}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
