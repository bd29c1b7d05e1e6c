"""Issue 16: the 0.5.21 audit compares each catalogued decoder with proto.models_0521 (its stage
boundary and the call its model file sums with), on the real 0.5.21 wheel."""
import pytest

from sumonce.audit.decoder import mismatches_0521
from sumonce.proto import models_0521 as m21
from sumonce.proto.eras import Era


@pytest.fixture(scope="module")
def report():
    from sumonce.audit.audit import audit
    from sumonce.audit.source import load
    return audit(load("sglang==0.5.21"))


def test_every_catalogued_decoder_is_compared_and_agrees(report):
    assert report.era == Era.V0_5_21
    decoders = {d["catalogued_as"]: d for d in report.decoders if "catalogued_as" in d}
    assert set(decoders) == {m.name for m in m21.MODELS_0521}
    assert all(d["mismatches"] == [] for d in decoders.values()), decoders


def test_a_wrong_fact_is_reported():
    """The comparison can fail: a file without stage boundaries where proto says one, and a sum call
    proto names that the file lacks."""
    text = "def forward(self, x):\n    return post_experts_all_reduce(x)\n"
    assert mismatches_0521(text, "POST_EXPERTS_ALL_REDUCE", False) == []
    assert mismatches_0521(text, "REDUCE_MOE_OUTPUT", True) == [
        "stage boundaries: source none, proto declares", "sums with: proto says reduce_moe_output, not in the source"]
