"""Where each token lives: per attention-DP rank counts (uneven), global token ids, the slices of
the FP4 all-gather dispatch, and padding. Shapes: T = tokens, D = hidden.

Token ids are global (DP rank 0's tokens first); -1 marks a padding row.
"""
from __future__ import annotations

import torch

from sumonce.proto.config import DpPaddingMode, ForwardState, ServerConfig


def token_counts(c: ServerConfig, s: ForwardState) -> list[int]:
    """Tokens of each attention-DP rank: num_tokens on DP rank 0, 3 more on each next one."""
    return [s.num_tokens + 3 * d for d in range(c.attn_dp_size)]


def offsets(counts: list[int]) -> list[int]:
    out = [0]
    for n in counts:
        out.append(out[-1] + n)
    return out


def split_sizes(n: int, k: int) -> list[int]:
    """Sizes of torch.tensor_split(range(n), k)."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def fp4_slices(c: ServerConfig, s: ForwardState) -> list[tuple[int, int]]:
    """(first global id, count) of each TP rank's slice of its DP rank's tokens (attention-TP
    scattered input of the FP4 all-gather path), in rank order."""
    counts, offs, out = token_counts(c, s), offsets(token_counts(c, s)), []
    for d, n in enumerate(counts):
        start = offs[d]
        for size in split_sizes(n, c.attn_tp_size):
            out.append((start, size))
            start += size
    return out


def dp_block_len(c: ServerConfig, s: ForwardState) -> list[int]:
    """Rows each DP rank occupies in the gathered buffer: max_len padded to a multiple of
    attn_tp (so the buffer reduce-scatters evenly over TP) in MAX_LEN mode, its count in SUM_LEN."""
    counts = token_counts(c, s)
    if s.dp_padding_mode == DpPaddingMode.MAX_LEN:
        k = c.attn_tp_size
        return [-(-max(counts) // k) * k] * len(counts)
    return counts


def pad_rows(x: torch.Tensor, n: int) -> torch.Tensor:
    return torch.cat([x, x.new_zeros((n - x.shape[0],) + tuple(x.shape[1:]))])


def pad_ids(ids: torch.Tensor, n: int) -> torch.Tensor:
    return torch.cat([ids, ids.new_full((n - ids.shape[0],), -1)])
