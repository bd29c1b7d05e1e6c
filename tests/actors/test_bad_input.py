"""Bad input: one line, exit 2, before any actor starts (no Ray needed)."""
import pytest

from sumonce.actors import repro
from sumonce.actors.run import main


@pytest.mark.parametrize("argv,words", [
    (["--model", "gpt5"], "unknown model 'gpt5'"),
    (["--tp-size", "4", "--ep-size", "3"], "ep_divides_tp"),
    (["--tp-size", "2", "--moe-a2a-backend", "deepep", "--ep-size", "2"], "out of scope"),
    (["--tp-size", "2", "--attn-cp-size", "2"], "actors' scope"),
    (["--world-size", "2", "--tp-size", "4"], "differs from --tp-size"),
    (["--sweep", "huge"], "unknown sweep 'huge'"),
    (["--tp-size", "2", "--guard-version", "v9"], "unknown --guard-version 'v9'"),
    (["--inject-fault", "explode:1"], "kill:RANK or hang:RANK"),
    (["--moe-runner-backend", "warp"], "'warp' is not one of"),
    (["--simulate-nodes", "--address", "127.0.0.1:1"], "--simulate-nodes starts a private cluster"),
])
def test_bad_input_exits_2_with_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1, err


def test_repro_bad_file(tmp_path, capsys):
    p = tmp_path / "cx.json"
    p.write_text('{"model": "qwen3_moe"}')
    assert repro.main([str(p)]) == 2
    assert "missing key(s) variant, version, config, state" in capsys.readouterr().err
