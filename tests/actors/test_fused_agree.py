"""The group's agreement on one fused-step table (actors/fused_calibrate.group_times), over real
gloo process groups on CPU: the first rank decides whether to calibrate, a calibration keeps each
variant's slowest rank (a failed check on one rank rules the variant out), and every member ends
with the first rank's numbers, so that all members choose the same variant."""
import multiprocessing
import socket

import pytest
import torch.distributed as dist

from sumonce.actors import fused_table as ft
from sumonce.actors.fused_calibrate import group_times  # imported once, before the members fork

WORLD, TOKENS = 2, (1, 2, 4)
SHAPE = ft.Shape(WORLD, WORLD, 64, "float32")


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _measured(rank):
    """What each rank measures: rank 1 is slower at one-shot, faster unfused, and its two-shot
    failed its check (None)."""
    def measure(fc, ws, pg, shape, tokens):
        return {T: {"oneshot": 10.0 + rank, "unfused": 20.0 - rank,
                    **({"twoshot": None if rank == 1 else 3.0} if T > WORLD else {})} for T in tokens}
    return measure


def _refuse(*_):
    raise AssertionError("calibrated although the first rank's table covers the shape")


def _member(rank, port, cache, known, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    table = ft.Table({"host": "test"})
    if known.get(rank):
        table.merge(SHAPE, known[rank])
    measure = _refuse if known.get(0) else _measured(rank)
    try:
        out.put((rank, group_times(table, cache, None, None, None, list(range(WORLD)), rank, SHAPE, TOKENS,
                                   device="cpu", measure_fn=measure)))
    except AssertionError as e:
        out.put((rank, str(e)))
    dist.destroy_process_group()


def _run(tmp_path, known):
    ctx = multiprocessing.get_context("fork")
    out, port, cache = ctx.Queue(), _port(), tmp_path / "cache.json"
    procs = [ctx.Process(target=_member, args=(r, port, cache, known, out)) for r in range(WORLD)]
    for p in procs:
        p.start()
    got = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    return got, cache


AGREED = {1: {"oneshot": 11.0, "unfused": 20.0}, 2: {"oneshot": 11.0, "unfused": 20.0},
          4: {"oneshot": 11.0, "twoshot": None, "unfused": 20.0}}


def test_a_calibration_keeps_the_slowest_rank_and_a_failed_check_rules_a_variant_out(tmp_path):
    got, cache = _run(tmp_path, {})
    assert got[0] == got[1] == (AGREED, True)
    assert ft.load(cache).times(SHAPE) == AGREED  # the first rank wrote the cache
    assert ft.choose(AGREED, WORLD, 4) == ("oneshot", 4)


@pytest.mark.parametrize("known", [
    {0: {T: {"oneshot": 9.0, "unfused": 5.0} for T in TOKENS}},                      # only the first rank knows
    {0: {T: {"oneshot": 9.0, "unfused": 5.0} for T in TOKENS},
     1: {T: {"oneshot": 1.0, "unfused": 50.0} for T in TOKENS}},                     # the other disagrees
])
def test_every_member_takes_the_first_ranks_table(tmp_path, known):
    got, cache = _run(tmp_path, known)
    assert got[0] == got[1] == ({T: {"oneshot": 9.0, "unfused": 5.0} for T in TOKENS}, False)
    assert not cache.exists()


def test_the_first_rank_lacking_the_shape_makes_the_whole_group_calibrate(tmp_path):
    got, _ = _run(tmp_path, {1: {T: {"oneshot": 1.0, "unfused": 50.0} for T in TOKENS}})
    assert got[0] == got[1] == (AGREED, True)
