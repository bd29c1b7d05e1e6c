"""proto.decisions: one signature per era's helper; the two eras proto already modelled agree with it."""
import itertools

from sumonce.proto import boundary as b
from sumonce.proto import decisions as d
from sumonce.proto.config import MoeA2ABackend, MoeRunnerBackend, Quantization, ServerConfig
from sumonce.proto.eras import Era
from sumonce.proto.predicates import should_skip_post_experts_all_reduce
from sumonce.proto.validation import ConfigError, validate


def configs():
    for tp, ep, dp, dpa, a2a, fp4, dwdp in itertools.product(
            (1, 2, 4), (1, 2, 4), (1, 2, 4), (False, True), list(MoeA2ABackend), (False, True), (1, 2)):
        extra = dict(moe_runner_backend=MoeRunnerBackend.FLASHINFER_CUTLASS, quantization=Quantization.MODELOPT_FP4) if fp4 else {}
        c = ServerConfig(tp_size=tp, ep_size=ep, dp_size=dp, enable_dp_attention=dpa, moe_a2a_backend=a2a,
                         dwdp_size=dwdp, **extra)
        try:
            yield validate(c)
        except ConfigError:
            pass


def test_every_era_but_the_first_has_a_helper():
    assert set(d.HELPERS) == set(Era) - {Era.V0_5_10}


def test_0_5_11_and_0_5_23_agree_with_their_existing_models():
    n = 0
    for c in configs():
        for p, R, F in itertools.product((False, True), repeat=3):
            n += 1
            assert d.skip_0_5_11(c, p, R, F) == should_skip_post_experts_all_reduce(
                c, is_tp_path=p, use_reduce_scatter=R, should_allreduce_fusion=F)
            assert d.skip_0_5_23(c, p, R, F) == b.should_skip_post_experts_all_reduce(c, b.ForwardContext(R), is_tp_path=p)
    assert n > 500


def test_each_era_adds_its_term():
    fi = ServerConfig(tp_size=2, ep_size=2, moe_a2a_backend=MoeA2ABackend.FLASHINFER,
                      moe_runner_backend=MoeRunnerBackend.FLASHINFER_CUTLASS)
    assert not d.skip_0_5_11(fi, True, False, False) and d.skip_0_5_15(fi, True, False, False)
    pplx = ServerConfig(tp_size=2, ep_size=2, moe_a2a_backend=MoeA2ABackend.PPLX)
    assert not d.skip_0_5_16(pplx, True, False, False) and d.skip_0_5_17(pplx, True, False, False)
    mega = ServerConfig(tp_size=2, ep_size=2, moe_a2a_backend=MoeA2ABackend.FLASHINFER_MEGAMOE)
    assert not d.skip_0_5_17(mega, True, False, False) and d.skip_0_5_20(mega, True, False, False)
    # V with attention TP 2 (tp 4, dp 2): a term up to 0.5.16, not from 0.5.17, none from 0.5.21
    v = ServerConfig(tp_size=4, ep_size=2, dp_size=2, enable_dp_attention=True)
    assert d.skip_0_5_16(v, False, False, False) and not d.skip_0_5_17(v, False, False, False)
    v1 = ServerConfig(tp_size=2, ep_size=2, dp_size=2, enable_dp_attention=True)
    assert d.skip_0_5_20(v1, False, False, False) and not d.skip_0_5_21(v1, False, False, False)
    # F is read up to 0.5.21, not in 0.5.23
    plain = ServerConfig(tp_size=2)
    assert d.skip_0_5_21(plain, True, False, True) and not d.skip_0_5_23(plain, True, False, True)
