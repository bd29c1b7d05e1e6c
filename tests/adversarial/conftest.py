"""The adversarial suite: each test is an input or a fault a hostile user tried (issue 15), and
each failed before the fix. `cli` runs a subcommand in this process, as `sumonce ...` would."""
import warnings

import pytest

warnings.filterwarnings("ignore", message=".*NumPy.*")


def run_cli(capsys, argv):
    from sumonce.cli import main
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own exit, as the console script would see it
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(capsys):
    return lambda *argv: run_cli(capsys, list(argv))


def one_line_2(result, words=""):
    """Exit 2 and exactly one line on stderr (no traceback), naming `words`."""
    code, _, err = result
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err[-2000:])
    assert words in lines[0], lines[0]
    return lines[0]
