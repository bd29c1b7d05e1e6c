"""Property tests (hypothesis): whatever a counterexample file or a command line holds, the answer
is a result or one line with exit 2, never a traceback."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sumonce.actors.repro import load
from sumonce.actors.run import UsageError
from sumonce.proto.validation import ConfigError

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=12)
FIELDS = ["tp_size", "ep_size", "dp_size", "enable_dp_attention", "gpu_arch", "quantization", "num_tokens",
          "attn_tp_input_scattered", "is_last_layer", "moe_runner_backend", "nope"]
SHAPED = st.fixed_dictionaries({
    "model": st.sampled_from(["qwen3_moe", "llama4", "x"]) | JSON,
    "variant": st.sampled_from(["Qwen3MoeSparseMoeBlock.forward_normal"]) | JSON,
    "version": st.sampled_from(["helper", "legacy", "v9"]) | JSON,
    "config": st.dictionaries(st.sampled_from(FIELDS), JSON | st.integers(-2**70, 2**70), max_size=4) | JSON,
    "state": st.dictionaries(st.sampled_from(FIELDS), JSON | st.integers(-2**70, 2**70), max_size=3) | JSON,
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=JSON | SHAPED)
def test_repro_reads_any_json_without_a_traceback(tmp_path, data):
    p = tmp_path / "cx.json"
    p.write_text(json.dumps(data))
    try:
        case = load(str(p), 0)
    except (UsageError, ConfigError) as e:
        assert str(e) and "\n" not in str(e)
    else:  # accepted: a case the actors can run
        assert case.config.tp_size >= 1 and 0 <= case.state.num_tokens


TOKENS = ["--tp", "--ep", "--dp", "--enable-dp-attention", "--quantization", "--moe-runner-backend",
          "--speculative-algorithm", "--gpu-arch", "--num-tokens", "--attn-tp-input-scattered", "--tp-s",
          "--model", "2", "0", "-1", "4", "nan", "FP8", "fp8", "EAGLE", "eagle", "", "x" * 3, "1e9",
          "--enable-attn-tp-input-scattered", "--dp-padding-mode", "max_len", "MAX_LEN", "--nnodes"]


@settings(max_examples=300, deadline=None)
@given(argv=st.lists(st.sampled_from(TOKENS), max_size=8))
def test_config_answers_any_command_line(argv):
    import contextlib
    import io

    from sumonce.config_cmd import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    assert code in (0, 2)
    if code == 2:
        assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
