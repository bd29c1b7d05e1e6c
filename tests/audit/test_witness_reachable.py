"""Issue 11, section 2, for the audit: every witness `sumonce audit` prints is a configuration
SGLang's validation accepts and that the model can run: DP attention only where the decoder read
from source gathers tokens for it (0.5.11 layers/communicator.py:947-986; a decoder without one
sums different ranks' tokens whatever the guard says), and the release's facts otherwise."""
from __future__ import annotations

import shlex

import pytest

from sumonce.proto import validate
from sumonce.proto.flags import parse_flags

pytestmark = pytest.mark.sglang


def _witness_flags(witness: str) -> list[str]:
    """The SGLang flags of a witness line ("--tp-size 2 ... (block F=.., R=..)")."""
    return shlex.split(witness.split(" (")[0])


@pytest.mark.parametrize("release", ["0.5.10.post1", "0.5.11", "0.5.23"])
def test_every_audit_witness_is_accepted_and_runnable(release_reports, release):
    rep = release_reports[release]
    gathers = {d["model"]: d["decoder"]["gathers_for_dp_attention"] for d in rep.decoders}
    seen = 0
    for v in rep.sites:
        if not v.witness:
            continue
        c, _, _ = parse_flags(_witness_flags(v.witness))
        validate(c)  # raises ConfigError on a configuration SGLang refuses
        if c.enable_dp_attention and c.dp_size > 1:
            assert gathers.get(v.model, True), (
                f"{release} {v.model}.{v.method}: witness {v.witness!r} needs DP attention, "
                "which this model's decoder does not gather tokens for")
        seen += 1
    assert seen >= 1
