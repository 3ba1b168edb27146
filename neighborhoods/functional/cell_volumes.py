"""N3's neighbour volumes over stride-sized cells, when every patch is a whole number of strides wide.

Axis legend: ``b`` batch, ``c`` channels, ``s`` slots (N3's k volumes), ``q`` patch items, ``m``
candidates per item, ``a`` a cell's place inside a patch (``r_h x r_w`` of them), ``n`` / ``n'``
cells, ``u`` a pixel inside a cell.

With ``patch = r * stride`` on both axes (the paper's 10x10 patches every 5 pixels: ``r = 2``),
the zero-padded image splits into ``stride x stride`` cells and patch ``q`` (grid position
``(i, j)``) is the ``r x r`` block of cells from cell ``(i, j)``. The volumes the
:class:`~neighborhoods.combiners.Projection` combiner concatenates, im2col, the candidates'
weighted sums (Ploetz & Roth 2018, Eq. 11) and col2im averaging overlaps, are then a product
over cells:

    ``vol[b, s, n, u] = sum_n' A[b, s, n, n'] x[b, n', u]``,
    ``A[b, s, n, n'] = 1 / cnt(n) * sum_{a, m : index[n - a, m] + a = n'} w[b, n - a, m, s]``,

where ``n - a`` must be a patch of the grid and ``cnt(n)`` counts the patches covering cell
``n``. Inside the image ``n' - n = index[q, m] - q``, so a cell's candidates are the window's
offsets again (a few more at the border, where the window is shifted inward). The patch route
multiplies ``Nq M`` weights with ``C p^2`` features per item, this one about as many with
``C stride^2``: ``r^2`` fewer multiply-adds (4x at the paper's setting), and neither an im2col
copy ``r^2`` times the image nor a col2im. ``A`` is a static candidate list over cells: its
index and the map from ``(q, m, a)`` to its entries depend on the grid and the patch index
only and are cached; the products are :func:`~.candidates.candidate_sum`'s (blocked, and
recomputing in the backward).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from .candidates import BLOCK_ELEMENTS, candidate_sum
from .patches import Patches
from .stages import stage
from .transforms import under_transform


def cells_per_patch(patches: Patches) -> tuple[int, int] | None:
    """``(r_h, r_w)`` when each patch side is a multiple of its stride and patches overlap, else ``None``."""
    (ph, pw), (sh, sw) = patches.patch_size, patches.stride
    if ph % sh or pw % sw or (ph == sh and pw == sw):  # not whole cells, or patches that do not overlap
        return None
    return ph // sh, pw // sw


def use_cells(x: Tensor, index: Tensor, patches: Patches) -> bool:
    """Whether :func:`cell_volumes` is the route: whole-cell patches, a static 2-D index, eager mode.

    The cell index is read from the patch index's values, so traced code (compile, export,
    vmap, jit) keeps the general route (see :mod:`.transforms`).
    """
    return (x.ndim == 4 and index.ndim == 2 and cells_per_patch(patches) is not None
            and not under_transform(x, index))


@functools.lru_cache(maxsize=64)
def _routing(grid: tuple[int, int], cells: tuple[int, int], index_bytes: bytes, shape: tuple[int, int]
             ) -> tuple[Tensor, Tensor, Tensor]:
    """The cell index ``(Ncells, Mc)``, the entry of ``A`` of each ``(a, q, m)`` ``(r_h r_w, Nq M)`` and ``1 / cnt``.

    Rows of the cell index list their cells ascending; a row with fewer than ``Mc`` cells
    repeats its first one, an entry no ``(a, q, m)`` maps to (weight 0).
    """
    (gh, gw), (rh, rw) = grid, cells
    ch, cw = gh + rh - 1, gw + rw - 1
    n_cells = ch * cw
    index = torch.frombuffer(bytearray(index_bytes), dtype=torch.long).view(shape)
    nq, m = shape
    q = torch.arange(nq)
    qy, qx = q // gw, q % gw
    jy, jx = index // gw, index % gw  # (q, m)
    offsets = [(ay, ax) for ay in range(rh) for ax in range(rw)]
    rows = torch.stack([((qy + ay) * cw + qx + ax).unsqueeze(1).expand(nq, m) for ay, ax in offsets])  # (a, q, m)
    cols = torch.stack([(jy + ay) * cw + jx + ax for ay, ax in offsets])
    pairs = rows * n_cells + cols
    keys, entry = torch.unique(pairs.flatten(), sorted=True, return_inverse=True)
    row_of_key = keys // n_cells
    per_row = torch.bincount(row_of_key, minlength=n_cells)
    width = int(per_row.max())
    starts = torch.cumsum(per_row, 0) - per_row
    rank = torch.arange(keys.numel()) - starts[row_of_key]
    cell_index = torch.empty(n_cells, width, dtype=torch.long)
    first = torch.zeros(n_cells, dtype=torch.long)
    first[row_of_key[rank == 0]] = keys[rank == 0] % n_cells
    cell_index[:] = first.unsqueeze(1)  # padding: the row's first cell again, never routed to
    cell_index[row_of_key, rank] = keys % n_cells
    route = (row_of_key * width + rank)[entry].view(len(offsets), nq * m)
    # patches covering each cell: the places a at which some patch q = n - a holds it
    cover = torch.bincount(rows[:, :, 0].flatten(), minlength=n_cells).to(torch.float64)
    return cell_index, route, cover.reciprocal()


def cell_volumes(x: Tensor, weight: Tensor, index: Tensor, patches: Patches, block_size: int | None = None) -> Tensor:
    """``col2im(candidate_sum(im2col(x), index, weight)) / cnt`` over stride-sized cells (module docstring).

    The same function as the patch route (round-off apart), for any image size (padded to
    tile as :class:`~neighborhoods.functional.Patches` does, then cropped); differentiable to
    any order. Needs :func:`cells_per_patch`.

    Shape:
        x: ``(B, C, H, W)``; weight: ``(B, Nq, M, S)``; index: ``(Nq, M)`` -> ``(B, S, C, H, W)``.
    """
    r = cells_per_patch(patches)
    if r is None:
        raise ValueError(f"cell_volumes needs patch sides that are multiples of their strides (and overlapping "
                         f"patches), got patch_size={patches.patch_size}, stride={patches.stride}")
    b, c, h, w = x.shape
    grid = patches.grid((h, w))
    if tuple(index.shape[:1]) != (grid[0] * grid[1],) or weight.shape[1:3] != index.shape:
        raise ValueError(f"index (Nq, M) and weight (B, Nq, M, S) must list the {grid[0] * grid[1]} patches of a "
                         f"{(h, w)} image, got index {tuple(index.shape)}, weight {tuple(weight.shape)}")
    (sh, sw) = patches.stride
    ch, cw = grid[0] + r[0] - 1, grid[1] + r[1] - 1
    host = index.detach().cpu().contiguous()
    cell_index, route, inv_cover = _routing(grid, r, host.numpy().tobytes(), tuple(host.shape))
    cell_index, route = cell_index.to(x.device), route.to(x.device)
    s = weight.shape[-1]
    (top, bottom), (left, right) = patches.pads((h, w))
    with stage("combining"):  # A's entries from the patch weights, the image as cells
        flat = weight.to(x.dtype).flatten(1, 2)  # (b, q m, s)
        cell_weight = flat.new_zeros(b, cell_index.numel(), s)
        for a in range(route.shape[0]):  # r_h r_w passes, no (b, a q m, s) copy of the weights
            cell_weight.index_add_(1, route[a], flat)
        cell_weight = cell_weight.view(b, *cell_index.shape, s) * inv_cover.to(x.device, x.dtype).view(1, -1, 1, 1)
        padded = F.pad(x, (left, right, top, bottom)) if top or bottom or left or right else x
        cells = padded.reshape(b, c, ch, sh, cw, sw).permute(0, 2, 4, 1, 3, 5).reshape(b, ch * cw, c * sh * sw)
    n_cells = cell_index.shape[0]
    if block_size is None and b * s * n_cells * n_cells > BLOCK_ELEMENTS and 2 * cell_index.shape[1] < n_cells:
        # more than one block, and a window narrower than the image: one row of cells per block,
        # whose key band is the window's rows (a taller block reads more keys outside every window;
        # at the paper's setting on 160x160, C = 64, forward + backward: 2.8 s with one row, 3.7 s
        # with the 9 rows that fill a block). Where all of A fits one block, one block is fastest.
        block_size = cw
    vol = candidate_sum(cells, cell_index, cell_weight, block_size)  # (b, n, s, c sh sw); labels itself
    with stage("combining"):  # the cells back into the image
        vol = vol.view(b, ch, cw, s, c, sh, sw).permute(0, 3, 4, 1, 5, 2, 6).reshape(b, s, c, ch * sh, cw * sw)
        return vol[..., top:top + h, left:left + w]
