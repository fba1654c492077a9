"""Issue 11: a property-based fuzz of job metadata and metadata filters through submit -> list -> get.
Whatever the metadata, the answer is never a 5xx, and what was accepted reads back equal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Service

URL = "https://example.com/clip.mp4#duration=4"

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=140), inner, max_size=4),
    max_leaves=30,
)
_metadata = st.dictionaries(st.text(max_size=140), _values, max_size=6)


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.usefixtures("every_app_module_imported")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metadata=_metadata, probe=_metadata)
def test_fuzzed_metadata_never_5xx_and_reads_back_equal(service: Service, metadata: Any, probe: Any) -> None:
    if not _encodable(metadata) or not _encodable(probe):
        return  # NaN/Infinity are not JSON: a client cannot send them
    with service.client() as client:
        created = client.post("/v1/jobs", json={"urls": [URL], "metadata": metadata})
        assert created.status_code in {202, 422}, created.text
        listed = client.get("/v1/jobs", params={"metadata": json.dumps(probe), "limit": 5})
        assert listed.status_code in {200, 422}, listed.text
        top = client.get("/v1/emotions/top", params={"model": "face", "emotion": "Joy", "metadata": json.dumps(probe)})
        assert top.status_code in {200, 422}, top.text
        if created.status_code == 202:
            job_id = created.json()["id"]
            shown = client.get(f"/v1/jobs/{job_id}")
            assert shown.status_code == 200 and shown.json()["metadata"] == metadata
            found = client.get("/v1/jobs", params={"metadata": json.dumps(metadata), "limit": 500})
            assert found.status_code == 200, found.text
            assert job_id in [j["id"] for j in found.json()["items"]]
