"""`neighbor-zoo show`: a user's image, k and temperature, the pixel flag, and picks ranked with their scores."""

import matplotlib.image
import numpy as np
import pytest
import torch

from comparisons.cli import main
from comparisons.figures.demos import build
from comparisons.figures.photo import load_image_file, load_photo
from comparisons.figures.picks import patch_rows, pixel_rows


@pytest.fixture
def picture(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.random((20, 30, 3))
    rgb[:, :15, 0] = 1.0  # a red left half, so that colours differ in kind
    paths = {}
    for ext in ("png", "jpg"):
        paths[ext] = tmp_path / f"picture.{ext}"
        matplotlib.image.imsave(paths[ext], rgb)
    return paths, rgb


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_show_takes_a_png_or_jpeg(picture, tmp_path, capsys, ext):
    paths, _ = picture
    out = tmp_path / "mine.png"
    assert main(["show", "conv2d", "--image", str(paths[ext]), "--size", "8", "--pixel", "3,4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "9 of 64 pixels read, total weight 9" in text and "(row, col) = (3, 4)" in text
    assert out.stat().st_size > 1000


def test_a_png_is_cropped_and_resized_like_the_sample_photos(picture):
    paths, rgb = picture
    photo = load_image_file(paths["png"], 5)
    crop = torch.from_numpy(rgb[:, 5:25]).permute(2, 0, 1)[None]  # the square centre crop, 20 x 20
    expected = torch.nn.functional.interpolate(crop, size=(5, 5), mode="area")[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(photo.rgb, expected, atol=1 / 255 + 1e-12)  # PNG stores 8 bits
    assert photo.features.shape == (1, 3, 5, 5)
    np.testing.assert_allclose(photo.features.mean(dim=(2, 3)).numpy(), 0, atol=1e-12)


@pytest.mark.parametrize("argv, message", [
    (["--image", "/no/such/file.png"], "--image: image must be an existing PNG or JPEG file"),
    (["--image", __file__], "could not be read as a PNG or JPEG"),
    (["--pixel", "3"], "--pixel must be ROW,COL"),
    (["--pixel=-1,2"], "--pixel must be ROW,COL"),
    (["--pixel", "16,0"], "--pixel must lie inside the 16 x 16 photo"),
    (["--k", "4"], "--k does not apply to conv2d"),
    (["--temperature", "0"], "--temperature must be a finite number > 0"),
])
def test_show_usage_errors_are_one_line(argv, message, tmp_path, capsys):
    try:  # argparse's type errors exit while parsing; later checks return 2
        code = main(["show", "conv2d", "--size", "16", "--out", str(tmp_path / "x.png"), *argv])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_convnn_picks_are_ranked_by_their_cosine():
    """Rank 1 the query, then the k - 1 largest cosines of the standardised colours (numpy, independently)."""
    photo = load_photo(size=12)
    x = photo.features[0].numpy().reshape(3, -1).T
    pixel = (7, 3)
    q = pixel[0] * 12 + pixel[1]
    cos = x @ x[q] / (np.linalg.norm(x, axis=1) * np.linalg.norm(x[q]))
    layer = build("conv_nn2d", 3, k=6)
    with torch.no_grad():
        nbhd = layer.neighborhood(photo.features)
    rows, metric = pixel_rows(layer, nbhd, photo.features, pixel, None, top=10)
    assert metric == "cosine" and [r.rank for r in rows] == [1, 2, 3, 4, 5, 6]
    others = [i for i in np.argsort(-cos, kind="stable") if i != q][:5]
    assert [r.pixel for r in rows] == [pixel] + [divmod(int(i), 12) for i in others]
    np.testing.assert_allclose([r.score for r in rows], [cos[q]] + [cos[i] for i in others], rtol=1e-10)
    assert all(r.weight == 1.0 for r in rows)


def test_n3_lists_patches_per_volume():
    photo = load_photo(size=10)
    layer = build("n3_block2d", 3, temperature=0.01, k=2)
    with torch.no_grad():
        nbhd = layer.neighborhood(photo.features)
    rows = patch_rows(nbhd, (4, 4), None, top=3)
    assert {r.slot for r in rows} == {0, 1}
    for s in (0, 1):
        mine = [r for r in rows if r.slot == s]
        assert [r.rank for r in mine] == [1, 2, 3] and mine[0].weight > 0.99  # cold: one patch per volume
        assert all(a.weight >= b.weight for a, b in zip(mine, mine[1:]))
        w = nbhd.key_weights(nbhd.query_at((4, 4)), slot=s).numpy()
        cols = nbhd.footprint.keys.shape[1]
        assert mine[0].top_left == divmod(int(w.argmax()), cols)  # stride 1, no offset: the token's own index
        assert mine[0].centre == (mine[0].top_left[0] + 1.0, mine[0].top_left[1] + 1.0)  # 3 x 3 patches


def test_show_k_and_temperature(tmp_path, capsys):
    assert main(["show", "conv_nn2d", "--size", "12", "--k", "4", "--out", str(tmp_path / "a.png")]) == 0
    text = capsys.readouterr().out
    assert "4 of 144 pixels read" in text and "score (cosine)" in text
    assert main(["show", "n3block2d", "--size", "12", "--temperature", "0.02", "--k", "2",
                 "--out", str(tmp_path / "b.png")]) == 0
    text = capsys.readouterr().out
    assert "patch top-left (row, col)" in text and "total weight 2;" in text
