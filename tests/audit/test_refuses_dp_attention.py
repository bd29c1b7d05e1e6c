"""A model whose layers refuse DP attention when built never runs it, so a witness under DP
attention is not one it can run (zaya's ZayaAttention.__init__ at 0.5.14 zaya.py:844-849:
`attn_tp_size = get_parallel().attn_tp_size` then `assert attn_tp_size == self.tp_size, ...`)."""
import ast
import zipfile

import pytest

from sumonce.audit.decoder import decoder_of, refuses_dp_attention
from sumonce.audit.source import fetch

LAYER = '''
class Attn:
    def __init__(self):
        self.tp_size = get_parallel().tp_size
        {stmt}

class Block:
    def forward(self, x):
        y = self.experts(x)
        if self.tp_size > 1:
            y = tensor_model_parallel_all_reduce(y)
        return y
'''


def _refuses(stmt: str) -> bool:
    text = LAYER.replace("{stmt}", stmt)
    return bool(refuses_dp_attention(ast.parse(text), text))


@pytest.mark.parametrize("stmt", [
    "attn_tp_size = get_parallel().attn_tp_size\n        assert attn_tp_size == self.tp_size, 'no DP attention'",
    "assert self.tp_size == get_attention_tp_size()",
    "assert not is_dp_attention_enabled()",
    "assert not server_args.enable_dp_attention",
    "assert get_parallel().attn_dp_size == 1",
    "if is_dp_attention_enabled():\n            raise ValueError('DP attention is not supported')",
    "if get_parallel().attn_tp_size != self.tp_size:\n            raise NotImplementedError",
])
def test_each_spelling_of_the_refusal_is_read(stmt):
    assert _refuses(stmt)


@pytest.mark.parametrize("stmt", [
    "assert self.num_heads % get_parallel().attn_tp_size == 0",  # a divisibility check, 0.5.23 bailing_moe.py:524
    "assert is_dp_attention_enabled()",  # requires it
    "assert get_parallel().attn_tp_size != self.tp_size",
    "if is_dp_attention_enabled():\n            self.x = 1",  # no raise
    "if self.flag:\n            assert not is_dp_attention_enabled()",  # only on one path
    "assert get_parallel().attn_dp_size == 2",
])
def test_what_does_not_refuse_it_is_not_read_as_a_refusal(stmt):
    assert not _refuses(stmt)


def test_a_refusal_outside_init_does_not_count():
    text = LAYER.replace("{stmt}", "pass") + '''
    def check(self):
        assert not is_dp_attention_enabled()
'''
    assert not refuses_dp_attention(ast.parse(text), text)


@pytest.mark.sglang
@pytest.mark.parametrize("version, line", [("0.5.14", 845), ("0.5.21", 843), ("0.5.23", 912)])
def test_zaya_refuses_dp_attention_and_so_gathers_nothing_for_it(version, line):
    with zipfile.ZipFile(fetch(version)) as z:
        text = z.read("sglang/srt/models/zaya.py").decode()
    tree = ast.parse(text)
    assert refuses_dp_attention(tree, text) == line
    assert decoder_of(tree, text).gathers_for_dp_attention is False
