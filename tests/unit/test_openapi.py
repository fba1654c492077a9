"""/openapi.json describes every route the app serves (the fuzzing test only reaches what it lists), from the
same structs that validate requests; /docs serves Swagger UI from the installed package, never a CDN."""

from __future__ import annotations

import typing

from hume.expression_measurement.batch import types as batch_types
from starlette.routing import Route

from app.admin.schemas import EventState
from app.analytics.schemas import Model
from app.config import Settings
from app.core.job_status import JobStatus
from app.hume.emotions import MODELS
from app.hume.tts_client import FORMATS, PROVIDERS
from app.jobs.options import OPTION_SETS, BatchFaceOptions, BatchProsodyOptions
from app.jobs.schemas import JobKind, ModelChoice
from app.store.tables import EVENT_STATES, JOB_KINDS, JOB_STATUSES
from app.tts.schemas import AudioFormat, Provider
from app.web import application, openapi_document
from tests.conftest import Service


def test_every_route_and_method_is_described() -> None:
    """Each (path, method) the app mounts has an operation in the spec, and the spec lists nothing
    the app does not serve."""
    served = {
        (route.path, method.lower())
        for route in application.routes(Settings())
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    described = {(path, method) for path, item in openapi_document.document()["paths"].items() for method in item}
    assert served - described == set(), "routes missing from app/web/openapi_document.py"
    assert described - served == set(), "operations in app/web/openapi_document.py that no route serves"


def test_limits_come_from_the_validating_structs() -> None:
    """The document states the limits the service enforces, and every JSON answer has a declared shape."""
    spec = openapi_document.document()
    schemas = spec["components"]["schemas"]
    text = schemas["TtsBody"]["properties"]["text"]
    assert (text["minLength"], text["maxLength"]) == (1, 5000)
    assert schemas["SubmitJob"]["properties"]["urls"]["maxItems"] == 100
    assert schemas["SubmitJob"]["additionalProperties"] is False
    page = spec["paths"]["/v1/jobs/{job_id}/predictions"]["get"]["parameters"]
    assert next(p for p in page if p["name"] == "limit")["schema"]["maximum"] == 5000
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                schema = response["content"].get("application/json", {}).get("schema", {})
                if path not in ("/openapi.json", "/v1/tts"):
                    assert schema.get("type") != "object" or "properties" in schema, (path, method, status)


def test_face_and_prosody_offer_both_backends_option_sets() -> None:
    """A job's face and prosody options are batch's or v1's, by the job's backend: the document offers both,
    with v1's limits as enforced, and the batch sets list exactly the batch SDK's fields."""
    schemas = openapi_document.document()["components"]["schemas"]
    choice = schemas["ModelChoice"]["properties"]
    for model, (batch, v1) in OPTION_SETS.items():
        refs = [branch["$ref"].rsplit("/", 1)[1] for branch in choice[model]["anyOf"]]
        assert refs == [batch.__name__, v1.__name__]
        assert "batch" in choice[model]["description"] and "v1" in choice[model]["description"]
        assert schemas[v1.__name__]["additionalProperties"] is False
    face = schemas["V1FaceOptions"]["properties"]
    assert (face["threshold"]["minimum"], face["threshold"]["maximum"]) == (0, 1)
    assert (face["min_size"]["type"], face["min_size"]["minimum"]) == ("integer", 1)
    assert (face["fps"]["exclusiveMinimum"], face["fps"]["maximum"]) == (0, 3)
    assert face["face_state"]["type"] == "string"
    timer = schemas["V1ProsodyOptions"]["properties"]["measurement_timer_ms"]
    assert (timer["type"], timer["minimum"], timer["maximum"]) == ("integer", 3000, 10000)
    assert tuple(BatchFaceOptions.__struct_fields__) == tuple(batch_types.Face.model_fields)
    assert tuple(BatchProsodyOptions.__struct_fields__) == tuple(batch_types.Prosody.model_fields)


def test_declared_enums_match_the_tables_and_hume() -> None:
    """Literal types in the schemas repeat values held elsewhere; they must not drift."""
    assert tuple(JobStatus) == JOB_STATUSES
    assert typing.get_args(JobKind) == JOB_KINDS
    assert typing.get_args(EventState) == EVENT_STATES
    assert typing.get_args(Model) == MODELS
    assert tuple(ModelChoice.__struct_fields__) == MODELS
    assert typing.get_args(AudioFormat) == FORMATS
    assert typing.get_args(Provider) == PROVIDERS


def test_docs_page_is_served_from_the_package(service: Service) -> None:
    """/docs is an HTML page whose scripts and styles come from this server, with no external URL."""
    with service.client() as client:
        page = client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "https://" not in page.text and "http://" not in page.text
        bundle = client.get("/docs/static/swagger-ui-bundle.js")
        assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.content
        assert client.get("/docs/static/swagger-ui.css").status_code == 200
        assert "/openapi.json" in client.get("/docs/static/docs-init.js").text
        assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
