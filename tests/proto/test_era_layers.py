"""proto.era_layers and proto.eras.accepts on concrete configurations, against what each release's
wheel says (cached wheels under ~/.cache/sumonce/sglang/; a missing wheel fails).

Each case names the lines it rests on; the facts themselves are re-read in test_eras.py (ERAS)
and here (PUBLISH_LINES, the per-model publishing lines of the context eras)."""
import zipfile

import pytest

from sumonce.proto import era_layers as L
from sumonce.proto.catalogue import MODELS_BY_NAME
from sumonce.proto.config import ForwardState, ServerConfig
from sumonce.proto.eras import RELEASE_ERA, Era, accepts
from sumonce.proto.validation import validate

from .test_eras import CACHE, wheel_lines

M10 = {m.name: m for m in L.MODELS_0510}
FILE = {"mimo_v2_flash": "mimo_v2"}


def cfg(**kw) -> ServerConfig:
    return validate(ServerConfig(**kw))


@pytest.mark.parametrize("release", sorted(L.PUBLISH_LINES))
def test_publishing_lines_are_on_the_wheel(release):
    """Each decoder publishes F and R on the cited lines; the others publish nothing."""
    for name, (f_line, r_line) in L.PUBLISH_LINES[release].items():
        text = wheel_lines(release, f"sglang/srt/models/{FILE.get(name, name)}.py")
        assert "mlp_reduce_scatter=" in text[r_line - 1], (release, name, r_line)
        if f_line:
            assert "fuse_mlp_allreduce=" in text[f_line - 1], (release, name, f_line)
        else:
            assert not any("fuse_mlp_allreduce=" in t for t in text), (release, name)
    assert "fuse_mlp_allreduce=True" in "".join(
        wheel_lines(release, "sglang/srt/models/step3p5.py")[L.PUBLISH_LINES[release]["step3p5"][0] - 1].split())
    for name in ("exaone_moe", "hunyuan_v3"):
        text = "\n".join(wheel_lines(release, f"sglang/srt/models/{name}.py"))
        assert "mlp_reduce_scatter=" not in text and "fuse_mlp_allreduce=" not in text
        assert name not in L.PUBLISH_LINES[release]


def test_accepts_follows_each_release_s_arguments():
    """pplx from 0.5.17 (with DP attention, dp >= 2), flashinfer_megamoe from 0.5.20, dwdp from
    0.5.17 (dwdp == tp), boundary_reduction from 0.5.21; flashinfer a2a in every era."""
    pplx = cfg(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True, moe_a2a_backend="pplx")
    pplx_no_dp = cfg(tp_size=4, ep_size=4, moe_a2a_backend="pplx")
    mega = cfg(tp_size=4, ep_size=4, moe_a2a_backend="flashinfer_megamoe")
    dwdp = cfg(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True, dwdp_size=4)
    rsv = cfg(tp_size=4, boundary_reduction="rsv")
    fi = cfg(tp_size=4, ep_size=4, moe_a2a_backend="flashinfer", moe_runner_backend="flashinfer_cutlass")
    table = {c: [e for e in Era if accepts(e, c)] for c in (pplx, pplx_no_dp, mega, dwdp, rsv, fi)}
    later = lambda first: [e for e in Era if list(Era).index(e) >= list(Era).index(first)]
    assert table[pplx] == later(Era.V0_5_17)
    assert table[pplx_no_dp] == []
    assert table[mega] == later(Era.V0_5_20)
    assert table[dwdp] == later(Era.V0_5_17)
    assert not accepts(Era.V0_5_17, cfg(tp_size=4, dwdp_size=2))
    assert not any(accepts(e, cfg(tp_size=4, dwdp_size=4)) for e in Era)  # resolved: DP attention, ep = dwdp
    assert table[rsv] == later(Era.V0_5_21)
    assert table[fi] == list(Era)


DWDP_RESOLVES = {
    "0.5.17": ("sglang/srt/server_args.py", {6411: "self.dp_size = self.dwdp_size", 6412: "self.enable_dp_attention = True",
                                             6416: "self.ep_size = self.dwdp_size", 6418: "self.moe_dp_size = 1",
                                             6419: 'self.moe_a2a_backend = "none"'}),
    "0.5.21": ("sglang/srt/arg_groups/parallel_hook.py", {370: "dp_size=cfg.dwdp_size,", 375: "enable_dp_attention=True,",
                                                          393: "ep_size=cfg.dwdp_size,", 398: "moe_dp_size=1,",
                                                          403: 'moe_a2a_backend="none",'}),
    "0.5.23": ("sglang/srt/arg_groups/parallel_hook.py", {469: "attn_dp_size=cfg.dwdp_size,", 488: "ep_size=cfg.dwdp_size,",
                                                          493: "moe_dp_size=1,", 498: 'moe_a2a_backend="none",'}),
}


@pytest.mark.parametrize("release", sorted(DWDP_RESOLVES))
def test_dwdp_resolves_dp_attention_and_ep(release):
    """--dwdp-size is not only dwdp == tp: SGLang resolves DP attention over dwdp groups (0.5.23's
    attn_dp_size, the new spelling of --dp-size N --enable-dp-attention), ep = dwdp, moe_dp 1 and a2a
    none (proto.eras.dwdp_accepted). A fact proto.eras lacked before issue 16: `--tp-size 2
    --dwdp-size 2` alone was a witness of the dwdp rows."""
    path, lines = DWDP_RESOLVES[release]
    text = wheel_lines(release, path)
    for n, want in lines.items():
        assert text[n - 1].strip() == want, (release, n)
    era = RELEASE_ERA[release]
    assert accepts(era, cfg(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True, dwdp_size=2))
    assert not accepts(era, cfg(tp_size=2, dp_size=2, enable_dp_attention=True, dwdp_size=2))
    assert not accepts(era, cfg(tp_size=2, ep_size=2, dwdp_size=2))


def test_the_0_5_10_catalogue():
    """hunyuan_v3 does not exist yet (no models/hunyuan_v3.py); minimax_m2 and step3p5 have their
    0.5.10.post1 decoders; qwen3_moe's EP guard has no R term."""
    names = set(zipfile.ZipFile(sorted(CACHE.glob("sglang-0.5.10.post1-*.whl"))[0]).namelist())
    assert "sglang/srt/models/hunyuan_v3.py" not in names and "hunyuan_v3" not in M10
    assert M10["minimax_m2"].decoder == L.MINIMAX_0510 and M10["step3p5"].decoder_sites == ()
    c = cfg(tp_size=4, ep_size=2)
    ep, tp = M10["qwen3_moe"].sites
    assert ep.guard(L.Version.LEGACY)(c, False, True) and not tp.guard(L.Version.LEGACY)(c, False, True)


MAX_LEN = ForwardState(dp_padding_mode="max_len")


def test_0_5_10_guards_without_r_double_the_reduce_scatter():
    """0.5.10.post1, DP attention, ep == dp, MAX_LEN padding: the communicator reduce-scatters
    (R, communicator.py:601) and qwen3_moe's EP guard (qwen3_moe.py:328) and minimax_m2's
    unconditional guard (minimax_m2.py:406) all-reduce on top: an axis summed twice. From 0.5.11
    V holds there: the helper skips, and the reduce-scatterv sums once."""
    c = cfg(tp_size=2, dp_size=2, ep_size=2, enable_dp_attention=True)
    for name, counts in (("qwen3_moe", (2, 1)), ("minimax_m2", (2, 2))):
        m = M10[name]
        n = L.sum_counts("0.5.10.post1", c, MAX_LEN, m, m.variants[0])
        assert (n.ep, n.moe_tp) == counts and not L.exactly_once("0.5.10.post1", c, MAX_LEN, m), name
    assert L.exactly_once("0.5.15", c, MAX_LEN, MODELS_BY_NAME["qwen3_moe"])


def test_v_with_attention_tp_crashes_until_0_5_17():
    """tp 4, dp 2, ep 2: V (0.5.11 utils.py:338) holds with attention TP 2 up to 0.5.16, and the
    reduce-scatterv crashes; 0.5.17's V needs tp == attn_dp (utils.py:465): the sites all-reduce
    and the layer sums once."""
    c, s, m = cfg(tp_size=4, dp_size=2, ep_size=2, enable_dp_attention=True), ForwardState(), MODELS_BY_NAME["qwen3_moe"]
    assert L.V("0.5.15", c) and L.V("0.5.16", c) and not L.V("0.5.17", c) and not L.V("0.5.10.post1", c)
    assert L.crashes("0.5.15", c, s, m) and L.crashes("0.5.16", c, s, m)
    assert not L.crashes("0.5.17", c, s, m) and L.exactly_once("0.5.17", c, s, m)


def test_hybrid_fusion_is_refused_from_0_5_18():
    """tp 4, ep 2 (moe_tp 2), F: in 0.5.17 both sites skip and the fused kernel sums over EP only
    (flashinfer_comm_fusion.py:687): MoE-TP missing; 0.5.18's communicator refuses F for the
    hybrid layout (communicator.py:828), so both sites all-reduce."""
    c, s, m = cfg(tp_size=4, ep_size=2), ForwardState(), MODELS_BY_NAME["qwen3_moe"]
    assert L.fusion("0.5.17", c, s, m) and not L.fusion("0.5.18", c, s, m)
    n17, n18 = (L.sum_counts(r, c, s, m, m.variants[0]) for r in ("0.5.17", "0.5.18"))
    assert (n17.ep, n17.moe_tp) == (1, 0) and (n18.ep, n18.moe_tp) == (1, 1)
    assert RELEASE_ERA["0.5.18"] == RELEASE_ERA["0.5.17"] == Era.V0_5_17


def test_step3p5_publishes_fusion_true_and_sums_in_its_decoder():
    """0.5.16 step3p5.py:633: ctx.F = True around its MoE, so the block skips; the decoder's own
    all-reduce (not F, not R) sums MoE + shared expert once."""
    c, s, m = cfg(tp_size=2), ForwardState(is_last_layer=True), MODELS_BY_NAME["step3p5"]
    block, decoder = m.sites[0], m.decoder_sites[0]
    assert L.site_flags("0.5.16", c, s, m, block) == (True, False)
    assert not L.site_runs("0.5.16", c, s, m, block) and L.site_runs("0.5.16", c, s, m, decoder)
    assert L.exactly_once("0.5.16", c, s, m)


def test_hunyuan_v3_reads_nothing_from_the_context():
    """hunyuan_v3 publishes nothing (no mlp_reduce_scatter= in its file): its helper calls read
    ctx.F = ctx.R = False even where a communicator would reduce-scatter."""
    c, m = cfg(tp_size=4, dp_size=2, ep_size=2, enable_dp_attention=True), MODELS_BY_NAME["hunyuan_v3"]
    assert L.site_flags("0.5.20", c, MAX_LEN, m, m.sites[0]) == (False, False)
