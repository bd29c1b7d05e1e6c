"""Issue 17: proto.nodes against SGLang's own `_calculate_rank_ranges`, read from the cached 0.5.11
wheel (entrypoints/engine.py:1259-1291, a function of four integers there) and run on every valid
small layout; 0.5.23 (engine.py:2045-2077) is checked to compute the same ranges."""
from __future__ import annotations

import ast
import glob
import os
import typing
import zipfile

import pytest

from sumonce.proto import nodes
from sumonce.proto.config import ServerConfig
from sumonce.proto.validation import violations

WHEELS = os.path.expanduser("~/.cache/sumonce/sglang")


def wheel_function(version: str, path: str, name: str) -> ast.FunctionDef:
    found = glob.glob(f"{WHEELS}/sglang-{version}-*.whl")
    if not found:
        pytest.skip(f"sglang {version} wheel not cached")
    with zipfile.ZipFile(found[0]) as z:
        tree = ast.parse(z.read(f"sglang/srt/{path}").decode())
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    return fn


def sglang_ranges():
    fn = wheel_function("0.5.11", "entrypoints/engine.py", "_calculate_rank_ranges")
    assert fn.lineno == 1259 and [a.arg for a in fn.args.args] == ["nnodes", "pp_size", "tp_size", "node_rank"]
    space = {"Tuple": typing.Tuple}
    exec(compile(ast.Module([fn], []), "engine.py", "exec"), space)  # noqa: S102 (SGLang's own function, run)
    return space["_calculate_rank_ranges"]


def layouts():
    for tp in (1, 2, 3, 4, 6, 8, 16):
        for pp in (1, 2, 3, 4):
            for nnodes in (1, 2, 3, 4, 8):
                c = ServerConfig(tp_size=tp, pp_size=pp, nnodes=nnodes)
                if not violations(c):
                    yield c


def test_every_rank_sits_on_the_node_whose_ranges_hold_it():
    ranges = sglang_ranges()
    seen = 0
    for c in layouts():
        for n in range(c.nnodes):
            pps, tps, _, _ = ranges(c.nnodes, c.pp_size, c.tp_size, n)
            for p in pps:
                for t in tps:
                    if p < c.pp_size:  # NOTE: SGLang hands node 2 of 3 a stage 2 that pp_size 2 lacks
                        assert nodes.node_rank(t, p, c.tp_size, c.nnodes, c.pp_size) == n, (c, p, t)
                        seen += 1
    assert seen > 100


def test_a_tp_group_is_contiguous_blocks_one_per_node():
    c = ServerConfig(tp_size=8, nnodes=2)
    assert nodes.tp_group_nodes(c) == (0, 0, 0, 0, 1, 1, 1, 1) and nodes.spans_nodes(c) == 2
    assert nodes.tp_group_nodes(ServerConfig(tp_size=4, nnodes=4)) == (0, 1, 2, 3)
    # one stage a node: each TP group sits on one node, stage 1 on node 1
    c = ServerConfig(tp_size=4, pp_size=2, nnodes=2)
    assert nodes.tp_group_nodes(c) == (0,) * 4 and nodes.tp_group_nodes(c, pp_rank=1) == (1,) * 4
    assert nodes.spans_nodes(c) == 1
    # two nodes a stage
    c = ServerConfig(tp_size=4, pp_size=2, nnodes=4)
    assert nodes.tp_group_nodes(c) == (0, 0, 1, 1) and nodes.tp_group_nodes(c, pp_rank=1) == (2, 2, 3, 3)


def test_0523_computes_the_same_ranges():
    """0.5.23 reads the sizes from get_parallel() but its arithmetic is 0.5.11's, line for line."""
    old = wheel_function("0.5.11", "entrypoints/engine.py", "_calculate_rank_ranges")
    new = wheel_function("0.5.23", "entrypoints/engine.py", "_calculate_rank_ranges")
    assert new.lineno == 2045 and new.end_lineno == 2077 and old.end_lineno == 1291

    def assigns(fn):
        return [ast.unparse(s).replace("parallel.", "") for s in fn.body if isinstance(s, ast.Assign)]
    assert len(assigns(old)) == 6
    assert assigns(old) == [a for a in assigns(new) if a not in ("parallel = get_parallel()", "nnodes = nnodes")]


def test_fusion_auto_enables_on_one_node_only():
    """The fact the multi-node sweep rests on is ServerConfig's (server_args.py:2326-2360), not here."""
    c = ServerConfig(tp_size=4, nnodes=1, architecture="Qwen3MoeForCausalLM")
    assert c.allreduce_fusion_enabled
    assert not ServerConfig(tp_size=4, nnodes=2, architecture="Qwen3MoeForCausalLM").allreduce_fusion_enabled
