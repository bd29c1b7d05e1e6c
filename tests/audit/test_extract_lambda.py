"""A sum inside `self.NAME = lambda ...` is followed to where it runs (grok's Grok1DecoderLayer at
0.5.23 grok.py:550: `self.ffn = lambda x: tensor_model_parallel_all_reduce(self.moe_with_rmoe(x))`
under `if get_parallel().tp_size > 1`, called as `hidden_states = self.ffn(hidden_states)` in
forward at :612). Only the shape whose run is certain is followed; every other lambda stays
"not understood" with the reason."""
import ast

from sumonce.audit.extract import LAMBDA_PROBLEM, sites_in

BOUND = '''
class Layer:
    def __init__(self, config):
        self.moe = FusedMoE(reduce_results=False)
        if self.tp_size > 1:
            self.ffn = lambda x: tensor_model_parallel_all_reduce(self.moe_with_extra(x))
        else:
            self.ffn = self.moe_with_extra

    def moe_with_extra(self, x):
        return self.moe(x) + self.mlp(x)

    def forward(self, x):
        x = self.attn(x)
        {call}
        return x
'''


def _site(call: str, source: str = BOUND):
    text = source.replace("{call}", call)
    (site,) = sites_in(ast.parse(text), text)
    return site


def test_a_lambda_called_on_every_forward_is_understood():
    s = _site("x = self.ffn(x)")
    assert s.problems == [] and s.runs_in == "forward" and s.after_experts
    assert s.method == "__init__" and [ast.unparse(c.test) for c in s.conds] == ["self.tp_size > 1"]


def test_a_lambda_returned_directly_is_understood():
    assert _site("return self.ffn(x)").runs_in == "forward"


def test_a_lambda_called_under_a_condition_is_not_followed():
    s = _site("if x.numel() > 0:\n            x = self.ffn(x)")
    assert s.problems and s.problems[0][0] == LAMBDA_PROBLEM and not s.runs_in


def test_a_lambda_called_in_a_loop_is_not_followed():
    s = _site("for _ in range(2):\n            x = self.ffn(x)")
    assert s.problems and s.problems[0][0] == LAMBDA_PROBLEM


def test_a_lambda_never_called_is_not_followed():
    s = _site("x = self.other(x)")
    assert s.problems and s.problems[0][0] == LAMBDA_PROBLEM


def test_a_lambda_called_from_two_methods_is_not_followed():
    two = BOUND + '''
    def forward_extend(self, x):
        return self.ffn(x)
'''
    s = _site("x = self.ffn(x)", two)
    assert s.problems and s.problems[0][0] == LAMBDA_PROBLEM


def test_a_local_lambda_is_not_followed():
    local = '''
class Block:
    def forward(self, x):
        y = self.experts(x)
        f = lambda t: tensor_model_parallel_all_reduce(t)
        if self.tp_size > 1:
            y = f(y)
        return y
'''
    (s,) = sites_in(ast.parse(local), local)
    assert s.problems and s.problems[0][0] == LAMBDA_PROBLEM and s.lambda_attr is None


def test_a_lambda_inside_a_larger_value_is_not_followed():
    """`self.ffn = wrap(lambda x: ...)`: the lambda is not the attribute's value."""
    s = _site("x = self.ffn(x)", BOUND.replace("self.ffn = lambda x: tensor_model_parallel_all_reduce(self.moe_with_extra(x))",
                                                "self.ffn = wrap(lambda x: tensor_model_parallel_all_reduce(self.moe_with_extra(x)))"))
    assert s.problems and s.problems[0][0] == LAMBDA_PROBLEM and s.lambda_attr is None


def test_a_followed_lambda_that_runs_no_experts_is_not_post_experts():
    attn = BOUND.replace("self.moe_with_extra(x))", "self.attn_out(x))")
    s = _site("x = self.ffn(x)", attn)
    assert s.runs_in == "forward" and s.after_experts is False
