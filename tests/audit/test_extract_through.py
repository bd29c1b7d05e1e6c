"""Site detection: an all-reduce after a helper method that runs the experts layer is post-experts
(nemotron_h's NemotronHMoE.forward up to 0.5.13.post1: forward -> _forward_core ->
_forward_core_normal -> self.experts(...), then `if self.tp_size > 1: all_reduce`)."""
import ast

from sumonce.audit.extract import sites_in

THROUGH = '''
class Block:
    def _core(self, x):
        return self._normal(x)

    def _normal(self, x):
        return self.experts(x, self.gate(x))

    def forward(self, x):
        y = self._core(x)
        if self.tp_size > 1:
            y = tensor_model_parallel_all_reduce(y)
        return y
'''

NAMED_ONLY = '''
class Block:
    def _norm(self, x):
        return self.routed_expert_norm(x)

    def _reduce(self, x):
        return self._norm(tensor_model_parallel_all_reduce(x))
'''


def test_all_reduce_after_a_method_that_runs_the_experts_is_post_experts():
    (site,) = sites_in(ast.parse(THROUGH), THROUGH)
    assert (site.cls, site.method, site.after_experts) == ("Block", "forward", True)


def test_a_method_named_after_the_experts_does_not_run_them():
    """Only a call of the experts layer itself counts through a helper (kimi_k3's _latent_norm
    calls routed_expert_norm, a norm)."""
    (site,) = sites_in(ast.parse(NAMED_ONLY), NAMED_ONLY)
    assert (site.method, site.after_experts) == ("_reduce", False)
