"""What the docs figures claim: the dot-product caption's numbers, colour bars, metric axes, the spectrum's pictures."""

import re
from pathlib import Path

import numpy as np
import pytest

import operators
from comparisons.figures import similarity_figure, spectrum_figure
from comparisons.figures.photo import load_photo
from comparisons.figures.plotting import grid, plt, show_map
from comparisons.figures.results_figures import metric_limits
from comparisons.figures.setting import Setting

DOCS = Path(__file__).parents[3] / "docs"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def test_dot_product_facts_by_a_second_computation():
    """Ranks by sorting (numpy, stable) and norms by hand, against the figure's own numbers."""
    setting = Setting()
    photo = load_photo(setting.image, setting.size)
    x = photo.features[0].numpy().reshape(3, -1).T  # (N, 3)
    q = setting.pixel[0] * setting.size + setting.pixel[1]
    dot = x @ x[q]
    cos = dot / (np.sqrt((x ** 2).sum(1)) * np.sqrt((x[q] ** 2).sum()))
    order = np.argsort(-dot, kind="stable")
    f = similarity_figure.facts(setting)
    assert f.dot_rank_of_query == int(np.where(order == q)[0][0]) + 1
    assert f.cosine_rank_of_query == int(np.where(np.argsort(-cos, kind="stable") == q)[0][0]) + 1
    assert f.dot_top == divmod(int(order[0]), setting.size)
    np.testing.assert_allclose([f.query_norm, f.dot_top_norm, f.cos_of_dot_top],
                               [np.linalg.norm(x[q]), np.linalg.norm(x[order[0]]), cos[order[0]]], rtol=1e-12)
    assert f.dot_top_norm > f.query_norm and f.dot_rank_of_query > 1 == f.cosine_rank_of_query


def test_attention_caption_quotes_the_computed_numbers():
    text = (DOCS / "attention.md").read_text()
    caption = text[text.index("figures/dot-vs-cosine.png"):]
    caption = " ".join(caption[:caption.index("*\n")].split())
    f = similarity_figure.facts()
    assert f"query pixel {f.query}" in caption
    assert f"ranks the query's own pixel {_ordinal(f.dot_rank_of_query)} of {f.pixels}" in caption
    assert f"the top key is pixel {f.dot_top}" in caption
    assert f"norm {f.dot_top_norm:.1f} against the query's {f.query_norm:.1f}" in caption
    assert f"a cosine of only {f.cos_of_dot_top:.2f}" in caption
    assert f"ranks the query {_ordinal(f.cosine_rank_of_query)}" in caption
    assert "pixels whose colour points the same way" not in text  # the old, wrong caption


def test_a_weight_map_gets_a_colour_bar():
    rgb = np.zeros((6, 6, 3))
    weights = np.zeros((6, 6))
    weights[2, 3] = 0.25
    fig, axes = grid(1, 2)
    show_map(axes[0, 0], rgb, None, (1, 1), "photo")
    assert len(fig.axes) == 2  # a photo alone: no bar
    show_map(axes[0, 1], rgb, weights, (1, 1), "map")
    assert len(fig.axes) == 3
    bar = fig.axes[-1]
    assert bar.get_xlim() == pytest.approx((0.0, 0.25))
    show_map(axes[0, 1], rgb, weights - 0.1, (1, 1), "signed")
    assert fig.axes[-1].get_xlim() == pytest.approx((-0.15, 0.15))  # a diverging scale, symmetric about 0
    plt.close(fig)


@pytest.mark.parametrize("values, metric, reference, expect", [
    ([26.5, 24.3, 22.7], "psnr", 20.44, (19.5, 27.5)),
    ([98.7, 96.5, 86.4], "accuracy", None, (85.0, 100.0)),
    ([99.9, 99.95], "accuracy", None, (99.5, 100.0)),
])
def test_metric_axes_are_the_metrics_own(values, metric, reference, expect):
    low, high = metric_limits(values, metric, reference)
    assert expect[0] <= low < min(values + ([reference] if reference else []))
    assert max(values) < high <= expect[1] or (metric == "accuracy" and high == 100.0)
    assert low > 0  # never an axis from 0 for these


def test_metric_limits_reject_nan():
    with pytest.raises(ValueError, match="values must be finite"):
        metric_limits([1.0, float("nan")], "psnr")


def test_spectrum_pictures_every_family_where_the_registry_places_it():
    spectrum_figure._check_pictures()  # raises if a picture sits in a cell the registry disagrees with
    pictured = {name for cell in spectrum_figure.PICTURES.values() for name, _ in cell}
    assert {"conv2d", "conv_nn2d", "neighborhood_attention2d", "criss_cross_attention2d", "n3_block2d",
            "self_attention2d"} <= pictured
    listed = {entry.split()[0] for names in spectrum_figure.placements().values() for entry in names}
    assert listed == set(operators.available())


def test_spectrum_refuses_a_misplaced_picture(monkeypatch):
    monkeypatch.setitem(spectrum_figure.PICTURES, ("dense", "global"), [("conv2d", "wrong")])
    with pytest.raises(ValueError, match=re.escape("conv2d is pictured under (dense, global)")):
        spectrum_figure._check_pictures()
