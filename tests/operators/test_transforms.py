"""torch.func.vmap, torch.export, torch.compile(fullgraph=True) and torch.jit.trace (issue 19, item 4).

Each registered operator either runs under the transform and equals eager (float32, rtol 1e-4,
atol 1e-5: the transform may reorder the arithmetic) or raises at once an error naming the
transform. The default suite checks a few representative operators, among them the three
whose data-dependent Python control flow was removed (ConvNN: ``exact.nonzero()`` in the
stable top-k, ``nonzero`` for the query tokens, a mask count in ``knn``; N3: a boolean-mask
gather in ``window_candidates``, the blocked kernels' ``.tolist()``; criss-cross: the blocked
kernels and their old-style autograd Functions). The slow sweep covers every registered name
and checks that docs/transforms.md shows exactly the table computed now.
"""

import importlib.util
from pathlib import Path

import pytest

import operators

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("transforms_table", ROOT / "scripts" / "transforms_table.py")
transforms_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(transforms_table)

#: the goal of the issue: these run under fullgraph compile and export
MUST_WORK = {("conv_nn2d", "compile"), ("conv_nn2d", "export"), ("criss_cross_attention2d", "compile"),
             ("criss_cross_attention2d", "export"), ("n3_block2d_digits", "export"), ("n3_block1d", "compile"),
             ("conv_nn2d", "vmap"), ("n3_block2d_digits", "vmap"), ("criss_cross_attention2d", "vmap"),
             ("criss_cross_attention2d", "trace"), ("n3_block2d_digits", "trace")}
REPRESENTATIVE = ["conv2d", "conv_nn2d", "n3_block2d_digits", "criss_cross_attention2d", "self_attention2d"]


def _check(name, kind):
    ok, reason = transforms_table.outcome(name, kind)  # a wrong number fails inside (assert_close)
    if (name, kind) in MUST_WORK:
        assert ok, f"{name} under {kind}: {reason}"
    if not ok:
        assert any(word in reason.lower() for word in transforms_table.NAMES[kind]), \
            f"{name} under {kind} failed without naming the transform: {reason}"


@pytest.mark.parametrize("kind", transforms_table.TRANSFORMS)
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_representative_operators_work_or_name_the_transform(name, kind):
    _check(name, kind)


@pytest.mark.slow
@pytest.mark.parametrize("kind", transforms_table.TRANSFORMS)
@pytest.mark.parametrize("name", operators.available())
def test_every_operator_works_or_names_the_transform(name, kind):
    _check(name, kind)


@pytest.mark.slow
def test_the_docs_table_is_the_computed_one():
    text = (ROOT / "docs" / "transforms.md").read_text()
    assert transforms_table.table() in text, "docs/transforms.md is stale: rerun scripts/transforms_table.py"
