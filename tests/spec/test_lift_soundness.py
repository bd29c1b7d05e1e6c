"""Lifter soundness: each lifted formula, evaluated at a concrete point hypothesis draws, equals
what the Python function returns there."""
import z3
from hypothesis import HealthCheck, given, settings, strategies as st

from sumonce.proto import communicator, predicates, semantics, validation
from sumonce.proto.catalogue import MODELS
from sumonce.proto.config import (AUTO_FUSION_ARCHITECTURES, DpPaddingMode, ForwardState, GpuArch, MoeA2ABackend,
                          MoeRunnerBackend, Quantization, ServerConfig, SpeculativeAlgorithm)
from sumonce.spec.symbolic import to_z3
from sumonce.spec.world import World

W = World()
ARCHS = sorted({a for m in MODELS for a in m.architectures} | set(AUTO_FUSION_ARCHITECTURES) | {"OtherForCausalLM"})
size = st.sampled_from([1, 2, 3, 4, 6, 8])

configs = st.builds(
    ServerConfig, tp_size=size, dp_size=size, ep_size=size, enable_dp_attention=st.booleans(),
    moe_a2a_backend=st.sampled_from(MoeA2ABackend), moe_runner_backend=st.sampled_from(MoeRunnerBackend),
    quantization=st.sampled_from(Quantization), disable_flashinfer_cutlass_moe_fp4_allgather=st.booleans(),
    enable_flashinfer_allreduce_fusion=st.booleans(), enforce_disable_flashinfer_allreduce_fusion=st.booleans(),
    architecture=st.sampled_from(ARCHS), gpu_arch=st.sampled_from(GpuArch), flashinfer_available=st.booleans(),
    speculative_algorithm=st.sampled_from(SpeculativeAlgorithm), nnodes=st.sampled_from([1, 2]),
    attn_cp_size=st.sampled_from([1, 2]), enable_nsa_prefill_context_parallel=st.booleans(),
    enable_attn_tp_input_scattered=st.booleans())
states = st.builds(ForwardState, num_tokens=st.sampled_from([-1, 0, 1, 7, 2048, 2049]),
                   dp_padding_mode=st.sampled_from(DpPaddingMode), attn_tp_input_scattered=st.booleans(),
                   is_last_layer=st.booleans(), next_norm_fused=st.booleans())


def at(formula, c, s, F, R):
    if not isinstance(formula, z3.ExprRef):  # the lift folded it to a constant
        return formula
    pairs = [(v, to_z3(getattr(c, n))) for n, v in W.c.vars.items()]
    pairs += [(v, to_z3(getattr(s, n))) for n, v in W.s.vars.items()]
    pairs += [(W.F, z3.BoolVal(F)), (W.R, z3.BoolVal(R))]
    value = z3.simplify(z3.substitute(formula, *pairs))
    if z3.is_bool(value):
        assert z3.is_true(value) or z3.is_false(value), value
        return z3.is_true(value)
    return value.as_long()


def lifted(fn, *args, **kwargs):
    return W.lift(fn, *args, **kwargs)


CONFIG_FUNCS = [predicates.should_use_flashinfer_cutlass_moe_fp4_allgather, predicates.should_use_dp_reduce_scatterv,
                communicator.scatters_hidden_states] + [r.holds for r in validation.RULES]
STATE_FUNCS = [communicator.flashinfer_fusion_applies, communicator.should_allreduce_fusion,
               semantics.forward_state_valid]
GUARDS = sorted({g for m in MODELS for s in m.sites + m.decoder_sites for g in s.guards.values()},
                key=lambda g: g.__name__)
PROPS = ["attn_dp_size", "attn_tp_size", "moe_tp_size", "allreduce_fusion_enabled", "speculative_is_eagle",
         "attn_tp_input_scattered_allowed", "moe_cp_allgather"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(configs, states, st.booleans(), st.booleans())
def test_predicates_rules_and_properties(c, s, F, R):
    for fn in CONFIG_FUNCS:
        assert at(lifted(fn, W.c), c, s, F, R) == fn(c), fn.__name__
    for fn in STATE_FUNCS:
        assert at(lifted(fn, W.c, W.s), c, s, F, R) == fn(c, s), fn.__name__
    for name in PROPS:
        assert at(W.lifter.attribute(W.c, name), c, s, F, R) == getattr(c, name), name
    for allow in (False, True):
        assert at(lifted(communicator.use_reduce_scatter, W.c, W.s, allow), c, s, F, R) == \
            communicator.use_reduce_scatter(c, s, allow)


@SETTINGS
@given(configs, st.booleans(), st.booleans(), st.booleans())
def test_helper_and_every_guard(c, is_tp, F, R):
    if c.ep_size > c.tp_size or c.tp_size % c.ep_size:
        c = ServerConfig(tp_size=c.ep_size * 2, ep_size=c.ep_size)  # moe_tp_size must be an integer size
    helper = lifted(predicates.should_skip_post_experts_all_reduce, W.c, is_tp_path=is_tp,
                    use_reduce_scatter=W.R, should_allreduce_fusion=W.F)
    assert at(helper, c, ForwardState(), F, R) == predicates.should_skip_post_experts_all_reduce(
        c, is_tp_path=is_tp, use_reduce_scatter=R, should_allreduce_fusion=F)
    for g in GUARDS:
        assert at(lifted(g, W.c, W.F, W.R), c, ForwardState(), F, R) == g(c, F, R), g.__name__


@SETTINGS
@given(configs, states, st.sampled_from(MODELS))
def test_sum_counts_for_every_version(c, s, m):
    if not validation.sizes_positive(c):
        return
    for v in m.versions:
        for variant in m.variants:
            n = semantics.sum_counts(c, s, m, variant, v)
            z = lifted(semantics.sum_counts, W.c, W.s, m, variant, v)
            assert (at(z.ep, c, s, False, False), at(z.moe_tp, c, s, False, False)) == (n.ep, n.moe_tp), (m.name, v)
            once = lifted(semantics.exactly_once, W.c, W.s, m, variant, v)
            assert at(once, c, s, False, False) == semantics.exactly_once(c, s, m, variant, v)
