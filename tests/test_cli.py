"""CLI smoke tests: every command runs and --help works."""

import pytest

from comparisons.cli import build_parser, main


def test_verify_passes(capsys):
    assert main(["verify", "--filter", "conv*"]) == 0
    out = capsys.readouterr().out
    assert "conv2d.reference==torch" in out and "0 failed" in out


def test_verify_unknown_filter_is_an_error(capsys):
    assert main(["verify", "--filter", "no-such-theorem"]) == 2


def test_list_shows_registry(capsys):
    assert main(["list"]) == 0
    assert "conv2d" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["verify"], ["list"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*command, "--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out
