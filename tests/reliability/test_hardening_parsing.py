"""Issue 22, items 5 and 7: no input answers 500 (URL authorities, numeric path and query parameters spelled
with Unicode digits, malformed dashboard cookies), and a webhook URL is judged at registration by the parser
and guard that deliver it: what registers is deliverable, credentials are refused without being echoed,
and a blocked URL names the rule, never the address its host name resolved to."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.egress.download import FetchLimits, download
from app.egress.errors import EgressError
from app.egress.pinned import PinnedClient
from app.egress.url_guard import UrlGuard
from tests.asgi_server import serve
from tests.conftest import Service, ServiceFactory
from tests.e2e.test_outbound_webhooks import FAST, only_message
from tests.reliability.helpers import rows, scalar, wait_final
from tests.webhook_receiver import Receiver

MEDIA = "https://example.com/clip.mp4#duration=4"
PUBLIC_HOOK = "https://93.184.216.34/hook"  # a public literal: registers without a DNS answer (the sandbox has none)
NFKC_DELIMITERS = ["\uff03", "\u2100", "\uff0f", "\uff1f", "\uff20", "\u2474"]  # fullwidth # / ? @, a/c, (1)


def _refused(answer: httpx.Response, field: str) -> str:
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"]["field"] == field, answer.text
    return str(answer.json()["error"]["message"])


def _jobs(service: Service) -> int:
    return int(scalar(service.database_url, "SELECT count(*) FROM job"))


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/c",
        "http://[::1]]/a.mp4",
        "http://[v1.x/a.mp4",
        *(f"http://media{c}example.com/a.mp4" for c in NFKC_DELIMITERS),
        "http://a\u00adb\u200b.example/a.mp4",  # IDNA refuses these code points
        "http://example.com:99999/a.mp4",
        "http://example.com:65536/a.mp4",
        "http://example.com:0/a.mp4",
        "http://:80/a.mp4",
        "http://ex ample.com/a.mp4",
        "http://2130706433/a.mp4",  # legacy numeric IPv4: clients disagree on what it is
        "http://127.1/a.mp4",
        "http://0x7f.0.0.1/a.mp4",
        "http://127.0.0.1./a.mp4",
    ],
)
def test_job_url_authorities_that_cannot_be_fetched_are_422(service: Service, url: str) -> None:
    """`http://[::1/c` and hosts with characters that NFKC-normalise into delimiters were 500s (urlsplit
    raises ValueError); port 99999 was accepted. Each is a 422 naming the URL, and no job is stored."""
    with service.client() as client:
        _refused(client.post("/v1/jobs", json={"urls": [MEDIA, url]}), "urls[1]")
    assert _jobs(service) == 0


@pytest.mark.parametrize("url", ["http://example.com:65535/a.mp4", "http://example.com:1/a.mp4",
                                 "http://[2001:db8::1]:8080/a.mp4", "https://\u00e9t\u00e9.example/a.mp4",
                                 "https://media.example./a.mp4", "http://93.184.216.34/a.mp4"])  # fmt: skip
def test_job_url_authorities_within_the_rules_are_accepted(service: Service, url: str) -> None:
    with service.client() as client:
        answer = client.post("/v1/jobs", json={"urls": [url]})
    assert answer.status_code == 202, answer.text


def _authority_chars() -> st.SearchStrategy[str]:
    # Weighted towards what URL parsers split on, plus characters that normalise into those delimiters.
    special = st.sampled_from(list("[]:@.%/?#\\ 0123456789abxf-_") + NFKC_DELIMITERS + ["\u00b2", "\u0665", "\u00e9"])
    return st.one_of(special, st.characters(codec="utf-8"))


_authorities = st.lists(_authority_chars(), max_size=24).map("".join)


@pytest.mark.slow
@pytest.mark.usefixtures("every_app_module_imported")
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(authority=_authorities)
def test_fuzzed_authorities_never_5xx(fuzz_service: Service, authority: str) -> None:
    """Any string as the authority of a job URL, a notify_url and a webhook endpoint's URL is accepted or
    refused with a 422 naming the field: never a 5xx."""
    url = f"http://{authority}/clip.mp4"
    with fuzz_service.client() as client:
        job = client.post("/v1/jobs", json={"urls": [url]})
        assert job.status_code in {202, 422}, (url, job.text)
        if job.status_code == 422:
            assert job.json()["error"]["details"]["field"] == "urls[0]"
        notify = client.post("/v1/jobs", json={"urls": [MEDIA], "notify_url": url})
        assert notify.status_code in {202, 422}, (url, notify.text)
        endpoint = client.post("/v1/webhook-endpoints", json={"url": url})
        assert endpoint.status_code in {201, 422}, (url, endpoint.text)
        if endpoint.status_code == 422:
            assert endpoint.json()["error"]["details"]["field"] == "url"


@pytest.fixture
def fuzz_service(make_service: ServiceFactory) -> Service:
    """One service for all of hypothesis's examples (a function-scoped fixture is not re-run per example);
    no worker: the jobs accepted are never processed, and loopback is allowed as in development."""
    return make_service(run_worker=False, allow_private_hosts="127.0.0.0/8,::1")


# Unicode digits: "²".isdigit() is true but int("²") fails (was a 500); int("\u0665") is 5 and int(" 5"),
# int("+5"), int("5_0") also succeed, so a route using int() alone accepted spellings no client means.
ODD_NUMBERS = ["\u00b2", "\u0665", "\uff15", "1\u00b2", " 5", "+5", "5_0", "5 ", "0x5", "-0", "", "9" * 30]


@pytest.mark.parametrize("raw", ODD_NUMBERS)
def test_numeric_path_and_query_parameters_take_ascii_digits_only(service: Service, raw: str) -> None:
    with service.client() as client:
        endpoint = client.post("/v1/webhook-endpoints", json={"url": PUBLIC_HOOK}).json()
        base = f"/v1/webhook-endpoints/{endpoint['id']}"
        _refused(client.get(f"{base}/messages", params={"before": raw}), "before")
        _refused(client.get(f"{base}/messages", params={"limit": raw}), "limit")
        _refused(client.get("/v1/admin/events", params={"cursor": raw}), "cursor")
        if raw.strip() and "/" not in raw:
            for answer in [
                client.get(f"{base}/messages/{raw}/attempts"),
                client.post(f"/v1/webhook-messages/{raw}/retry"),
                client.post(f"/v1/admin/events/{raw}/replay"),
            ]:
                assert answer.status_code == 404, (raw, answer.request.url, answer.text)


def test_ascii_numbers_still_work(service: Service) -> None:
    with service.client() as client:
        endpoint = client.post("/v1/webhook-endpoints", json={"url": PUBLIC_HOOK}).json()
        base = f"/v1/webhook-endpoints/{endpoint['id']}"
        assert client.get(f"{base}/messages", params={"before": "12", "limit": "5"}).status_code == 200
        assert client.get(f"{base}/messages/12/attempts").status_code == 404
        assert client.post("/v1/webhook-messages/12/retry").status_code == 404
        assert client.get("/v1/admin/events", params={"cursor": "7"}).status_code == 200


@pytest.mark.parametrize(
    "cookie",
    [
        b"dashboard_session=\xff",
        b"dashboard_session=eyJrIjoxfQ.\xe9\xe9\xe9",
        b"dashboard_session=\xc3\xa9.0011",
        b"dashboard_session=.",
        b"dashboard_session=a.b.c",
        b'dashboard_session="unterminated',
        b"dashboard_session",
        b"=;;;=; dashboard_session=;",
        b"dashboard_session=" + b"a" * 3000 + b"." + b"f" * 64,
        b"dashboard_session=%ff%00.%00",
    ],
)
def test_malformed_dashboard_cookies_sign_out_never_500(service: Service, cookie: bytes) -> None:
    """With no key at all, a session cookie holding a non-ASCII byte was a 500 (hmac.compare_digest refuses
    non-ASCII str). Every malformed cookie now leads to the sign-in page (the JSON poll: a 401)."""
    for path, status in [("/dashboard/jobs", 303), ("/dashboard/jobs/status.json", 401),
                         (f"/dashboard/jobs/{uuid.uuid4()}", 303)]:  # fmt: skip
        answer = httpx.get(service.url + path, headers={b"Cookie": cookie}, follow_redirects=False)
        assert answer.status_code == status, (path, answer.status_code, answer.text[:300])
        if status == 303:
            assert answer.headers["location"].startswith("/dashboard/signin")
    signin = httpx.get(service.url + "/dashboard/signin", headers={b"Cookie": cookie})
    assert signin.status_code == 200


def test_control_characters_in_a_cookie_are_refused_by_the_http_parser(service: Service) -> None:
    """Control characters are not allowed in a header value (RFC 9110 §5.5): the server's HTTP/1.1 parser
    (httptools) answers 400 before the application runs, for every path, and the next request is served."""
    for path in ("/dashboard/jobs", "/dashboard/jobs/status.json", "/dashboard/signin"):
        answer = httpx.get(service.url + path, headers={b"Cookie": b"dashboard_session=\x7f\x01"})
        assert answer.status_code == 400, (path, answer.status_code, answer.text[:300])
    assert httpx.get(service.url + "/dashboard/signin").status_code == 200


# Item 7: one parser for registration and delivery.

LOOPBACK_FORMS = ["http://127.0.0.2.:{port}/hook", "http://2130706434:{port}/hook", "http://127.2:{port}/hook",
                  "http://0x7f000002:{port}/hook", "http://0177.0.0.2:{port}/hook"]  # fmt: skip


@pytest.mark.parametrize("form", LOOPBACK_FORMS)
def test_webhook_urls_aiohttp_would_not_deliver_are_refused_at_registration(
    make_service: ServiceFactory, form: str
) -> None:
    """Each of these registered (the registration parser read it as 127.0.0.2, allowed here) and then failed
    every delivery: aiohttp refuses non-canonical IPv4 hosts. Registration now uses the delivering parser."""
    service = make_service(allow_private_hosts="127.0.0.0/8")
    with service.client() as client:
        message = _refused(client.post("/v1/webhook-endpoints", json={"url": form.format(port=9)}), "url")
        assert "IPv4" in message, message
        job = client.post("/v1/jobs", json={"urls": [MEDIA], "notify_url": form.format(port=9)})
        _refused(job, "notify_url")
        assert client.get("/v1/webhook-endpoints").json()["items"] == []


def test_a_registered_endpoint_is_one_delivery_reaches(make_service: ServiceFactory) -> None:
    """The canonical spelling of the same receiver registers, and a test event is delivered to it."""
    service = make_service(**FAST)
    with Receiver() as receiver, service.client() as client:
        answer = client.post("/v1/webhook-endpoints", json={"url": receiver.url})
        assert answer.status_code == 201, answer.text
        endpoint = answer.json()
        receiver.secrets.append(endpoint["secret"])
        assert client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test").status_code == 202
        receiver.wait_for(1)
        only_message(client, endpoint["id"], "delivered")


@pytest.mark.parametrize(
    "url",
    ["https://hooks-user:s3cr3t-pw@example.com/hook", "https://s3cr3t-pw@example.com/hook",
     "https://:s3cr3t-pw@example.com/hook", "https://hooks-user:s3cr3t-pw@[::1/hook"],
)  # fmt: skip
def test_credentials_in_webhook_urls_are_refused_without_echo(service: Service, url: str) -> None:
    with service.client() as client:
        for path, body, field in [
            ("/v1/webhook-endpoints", {"url": url}, "url"),
            ("/v1/jobs", {"urls": [MEDIA], "notify_url": url}, "notify_url"),
        ]:
            answer = client.post(path, json=body)
            _refused(answer, field)
            assert "s3cr3t-pw" not in answer.text and "hooks-user" not in answer.text, answer.text
        created = client.post("/v1/webhook-endpoints", json={"url": PUBLIC_HOOK}).json()
        patched = client.patch(f"/v1/webhook-endpoints/{created['id']}", json={"url": url})
        _refused(patched, "url")
        assert "s3cr3t-pw" not in patched.text
    assert _jobs(service) == 0


@pytest.mark.parametrize("port", ["0", "65536", "99999"])
def test_webhook_ports_outside_the_range_are_refused(service: Service, port: str) -> None:
    with service.client() as client:
        message = _refused(client.post("/v1/webhook-endpoints", json={"url": f"https://example.com:{port}/h"}), "url")
    assert "port" in message and "65535" in message


def _refusal(client: httpx.Client, url: str, field: str) -> str:
    body: dict[str, Any] = {"url": url} if field == "url" else {"urls": [MEDIA], "notify_url": url}
    path = "/v1/webhook-endpoints" if field == "url" else "/v1/jobs"
    return _refused(client.post(path, json=body), field)


@pytest.mark.parametrize("field", ["url", "notify_url"])
def test_blocked_webhook_urls_name_the_rule_never_the_resolved_address(
    make_service: ServiceFactory, field: str
) -> None:
    """`localhost` resolves to loopback: the refusal says so, without the address (an internal DNS oracle
    when the name is one only the service's resolver knows). A literal is named as given."""
    service = make_service(allow_private_hosts="")
    with service.client() as client:
        message = _refusal(client, "http://localhost:8000/hook", field)
        assert "loopback" in message and "localhost" in message, message
        assert "127.0.0.1" not in message and "::1" not in message, message
        literal = _refusal(client, "http://169.254.169.254/latest", field)
        assert "metadata" in literal, literal
        mapped = _refusal(client, "http://[::ffff:10.0.0.1]/hook", field)
        assert "private" in mapped, mapped


def test_a_blocked_media_url_names_the_rule_never_the_resolved_address(make_service: ServiceFactory) -> None:
    """Job media (the v1 download path) is judged by the same rules, and its per-source error is rule-only."""
    service = make_service(hume_backend="v1", allow_private_hosts="")
    with service.client() as client:
        job = client.post("/v1/jobs", json={"urls": ["http://localhost:9/clip.wav"], "backend": "v1"})
        assert job.status_code == 202, job.text
        done = wait_final(client, job.json()["id"], timeout=60)
    assert done["num_errors"] == 1, done
    [error] = [r[0] for r in rows(service.database_url, "SELECT error FROM source WHERE job_id = %s", done["id"])]
    assert "localhost" in error and "loopback" in error, error
    assert "127.0.0.1" not in error and "::1" not in error, error


# The download path: a redirect's Location is a stranger's URL too.


async def _hostile_redirect(request: Request) -> Response:
    response = Response(status_code=307)
    response.raw_headers.append((b"location", request.query_params["to"].encode()))
    return response


async def _small_media(request: Request) -> Response:
    return Response(b"m" * 100, media_type="video/mp4")


@pytest.mark.parametrize(
    ("location", "rule"),
    [
        ("http://[::1/c", "[IPv6]"),
        ("http://a\uff03b.example/x", "host"),
        ("http://a\u2100b.example/x", "host"),
        ("http://user:s3cr3t-pw@127.0.0.1:{port}/media", "credentials"),
        ("http://2130706433:{port}/media", "IPv4"),
        ("http://127.0.0.1:99999/media", "port"),
        ("http://internal.test:{port}/media", "internal.test resolves to a private address"),
    ],
)
async def test_hostile_redirects_are_refused_naming_the_rule(location: str, rule: str) -> None:
    """Each hop of a media download is read by the download's parser and held to the same rules: a refusal
    (BlockedUrl or FetchFailed, the per-source errors) names the rule, never credentials or a resolved address."""

    async def resolve(host: str, port: int) -> list[str]:
        return {"internal.test": ["10.0.0.9"]}[host]

    app = Starlette(routes=[Route("/to", _hostile_redirect), Route("/media", _small_media)])
    with serve(app) as port:
        guard = UrlGuard(["127.0.0.1"], resolver=resolve)
        start = f"http://127.0.0.1:{port}/to?" + urlencode({"to": location.format(port=port)})
        async with PinnedClient(guard) as client:
            with pytest.raises(EgressError) as caught:
                async with download(client, start, FetchLimits()):
                    pass
    message = caught.value.message
    assert rule in message, message
    assert "s3cr3t-pw" not in message and "10.0.0.9" not in message, message
