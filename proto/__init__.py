"""sumonce.proto: the executable model of SGLang's post-experts all-reduce decision.

Standard library only. Configuration (config), validation (validate), the global predicates and
the helper (predicates), the communicator decisions (communicator), the site catalogue
(sites, guards, catalogue) and the reduction semantics (semantics).
"""
from .catalogue import MODELS, MODELS_BY_NAME, SITES, model
from .communicator import should_allreduce_fusion, use_reduce_scatter
from .config import (
    DpPaddingMode,
    ForwardState,
    GpuArch,
    MoeA2ABackend,
    MoeRunnerBackend,
    Quantization,
    ServerConfig,
    SpeculativeAlgorithm,
)
from .predicates import (
    should_skip_post_experts_all_reduce,
    should_use_dp_reduce_scatterv,
    should_use_flashinfer_cutlass_moe_fp4_allgather,
)
from .semantics import SumCounts, exactly_once, sum_counts
from .sites import Axis, Group, Path, Site, Version
from .validation import RULES, ConfigError, validate

from sumonce import __version__  # noqa: F401 (one version, the package's, re-exported)

__all__ = [
    "MODELS", "MODELS_BY_NAME", "SITES", "model", "should_allreduce_fusion", "use_reduce_scatter",
    "DpPaddingMode", "ForwardState", "GpuArch", "MoeA2ABackend", "MoeRunnerBackend", "Quantization",
    "ServerConfig", "SpeculativeAlgorithm", "should_skip_post_experts_all_reduce",
    "should_use_dp_reduce_scatterv", "should_use_flashinfer_cutlass_moe_fp4_allgather", "SumCounts",
    "exactly_once", "sum_counts", "Axis", "Group", "Path", "Site", "Version", "RULES", "ConfigError",
    "validate",
]
