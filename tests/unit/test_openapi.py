"""/openapi.json describes every route the app serves (the fuzzing test only reaches what it lists)."""

from __future__ import annotations

from starlette.routing import Route

from app.web import application, openapi_document


def test_every_route_and_method_is_described() -> None:
    """Each (path, method) the app mounts has an operation in the spec, and the spec lists nothing
    the app does not serve."""
    served = {
        (route.path, method.lower())
        for route in application.routes()
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    described = {(path, method) for path, item in openapi_document.SPEC["paths"].items() for method in item}
    assert served - described == set(), "routes missing from app/openapi.py"
    assert described - served == set(), "operations in app/openapi.py that no route serves"
