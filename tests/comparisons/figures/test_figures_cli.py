"""`neighbor-zoo show` and the figure helpers: real pictures of real neighbourhoods."""

import pytest

from comparisons.cli import build_parser, main
from comparisons.figures import simplex_figure
from comparisons.figures.setting import Setting


def test_show_conv_reads_its_window(tmp_path, capsys):
    out = tmp_path / "conv.png"
    assert main(["show", "conv2d", "--size", "16", "--pixel", "5,6", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.stat().st_size > 1000
    assert "9 of 256 pixels read, total weight 9" in text
    for r in (4, 5, 6):
        for c in (5, 6, 7):
            assert f"({r}, {c})" in text  # the 3x3 window around the query, each with weight 1


def test_show_n3_slot_is_one_distribution(tmp_path, capsys):
    assert main(["show", "n3block2d", "--size", "16", "--slot", "1", "--out", str(tmp_path / "n3.png")]) == 0
    assert "total weight 1;" in capsys.readouterr().out  # one volume's weights sum to 1



@pytest.mark.parametrize("query", ["3", "a,b", "1,2,3"])
def test_show_bad_query(query, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["show", "conv2d", "--query", query])  # the old name of --pixel
    assert "--pixel must be ROW,COL" in capsys.readouterr().err


def test_show_query_outside_photo(tmp_path, capsys):
    assert main(["show", "conv2d", "--size", "16", "--query", "16,0", "--out", str(tmp_path / "x.png")]) == 2
    assert "--pixel must lie inside the 16 x 16 photo" in capsys.readouterr().err


def test_show_unknown_operator(tmp_path, capsys):
    assert main(["show", "no_such_layer", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown operator name" in capsys.readouterr().err


def test_figures_are_byte_identical_across_runs(tmp_path):
    a = simplex_figure.draw(tmp_path / "a")[0].read_bytes()
    b = simplex_figure.draw(tmp_path / "b")[0].read_bytes()
    assert a == b


def test_default_query_scales_with_the_photo():
    assert Setting().pixel == (20, 9)
    assert Setting(size=16).pixel == (10, 4)


@pytest.mark.parametrize("command", [["figures"], ["show", "conv2d"], ["explore"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*command, "--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_show_any_registered_operator(tmp_path, capsys):
    """A name without a figure demo is built by the registry with seeded random weights."""
    assert main(["show", "snl2d", "--size", "8", "--out", str(tmp_path / "snl.png")]) == 0
    assert "snl2d" in capsys.readouterr().out
    assert (tmp_path / "snl.png").is_file()
