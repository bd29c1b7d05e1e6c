"""Which tokens each rank holds when a post-experts sum runs (placements over the attention-DP axis).

Under DP attention every attention-DP rank holds its own tokens ("varying" over that axis). A sum
over ranks is only meaningful when they hold the same tokens: the decoder must gather the DP
group's tokens before the MoE (and scatter after). Where a sum's group spans ranks whose tokens
differ, it adds different tokens together: it *mixes tokens* (neither a double nor a missing sum).

Facts (SGLang 0.5.11):
- A decoder with a LayerCommunicator gathers in prepare_mlp (layers/communicator.py:947-986,
  dp_gather_partial) and scatters in postprocess_layer (:1204-1225). exaone_moe's and hunyuan_v3's
  decoders call their MoE block straight after the norm (models/exaone_moe.py:511-535,
  models/hunyuan_v3.py:386-408): no gather. hunyuan_v3's attention is even sharded over the whole
  TP size (models/hunyuan_v3.py:261), not the attention-TP size.
- Under Q the FP4 all-gather dispatch and reduce-scatterv combine run inside the experts call,
  so the combine is aligned; after it each rank holds its own slice (ep == attn_dp == tp, so
  attn_tp == 1), and a later sum over ranks mixes tokens, or mismatches collective sizes (a
  hang) where the ranks' token counts differ.
Rank layout (parallel_state, as proto.layout gives it): MoE-TP groups are blocks of moe_tp
consecutive ranks, EP groups stride moe_tp, attention-DP ranks are blocks of attn_tp.

NOTE: written in the subset spec/ lifts.
"""
from __future__ import annotations

from .config import ServerConfig
from .predicates import should_use_flashinfer_cutlass_moe_fp4_allgather
from .sites import Group, Model


def gathers_tokens(c: ServerConfig, m: Model) -> bool:
    """The decoder gathers the DP group's tokens before the MoE (so all ranks hold them all)."""
    return c.attn_dp_size > 1 and m.decoder.gathers_for_dp_attention


def tokens_vary_at_sites(c: ServerConfig, m: Model) -> bool:
    """After the experts, ranks of different attention-DP ranks hold different tokens: DP
    attention without the decoder's gather, or the FP4 all-gather path after its combine."""
    return c.attn_dp_size > 1 and (should_use_flashinfer_cutlass_moe_fp4_allgather(c)
                                   or not m.decoder.gathers_for_dp_attention)


def group_spans_dp_ranks(c: ServerConfig, group: Group) -> bool:
    """Some group of this kind holds ranks of two attention-DP ranks."""
    if c.attn_dp_size == 1:
        return False
    if group == Group.TP:
        return True
    if group == Group.EP:
        return c.ep_size > 1
    # NOTE: blocks of moe_tp = tp/ep ranks lie inside blocks of attn_tp = tp/dp ranks exactly when
    # attn_tp is a multiple of moe_tp, i.e. when attn_dp divides ep (stated on the sizes themselves,
    # which z3 solves far faster than a remainder of two quotients).
    return c.ep_size % c.attn_dp_size != 0


def model_runs_dp_attention(c: ServerConfig, m: Model) -> bool:
    """The model can serve `c`'s DP attention at all (False: server_args accepts the flag, but the
    model has no gather, so its MoE sums can never be right)."""
    return c.attn_dp_size == 1 or m.decoder.gathers_for_dp_attention
