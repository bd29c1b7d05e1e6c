"""The step after the sites, for executors: lives in proto.semantics (one decision, one place)."""
from .semantics import After, after_experts, next_layer_group

__all__ = ["After", "after_experts", "next_layer_group"]
