"""Reading an Audio Decisions request as Hume documents it: the multipart body of `POST /v0/decisions/file`
and the JSON of `/input_tokens`, each rule checked here on its own (not through the service's validation).

Sources: R/ = dev.hume.ai/audio-decisions/reference/, D/ = .../docs/ (AUDIO-DECISIONS-FACTS §1-2). Where the
docs name no error code, the code used is marked ASSUMED. Pointers follow D/errors.md: a value rule names the
field itself (`/questions/clarity/criteria`); a missing or unknown field names the object that should (not)
hold it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from app.hume import decisions_contract as hume

from .decisions_errors import Refusal, pointer

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_QUESTION_KEYS = (hume.QUESTION_TYPE_KEY, hume.INSTRUCTIONS_KEY, hume.CRITERIA_KEY)
_REQUEST_KEYS = (hume.QUESTIONS_KEY, hume.CONTEXT_KEY)


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def _invalid(message: str, param: str | None = None) -> Refusal:
    return Refusal(hume.MESSAGE_INVALID, message, param)


def parts(content_type: str, body: bytes) -> list[Part]:
    """The body's parts in order; message_invalid when it is not readable multipart (D/limits-and-errors)."""
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise _invalid("The body must be multipart/form-data with a request part and a file part.")
    found: list[Part] = []
    for section in (b"\r\n" + body).split(b"\r\n--" + match.group(1).encode("latin-1"))[1:]:
        if section.startswith(b"--"):
            return found
        head, sep, data = section.partition(b"\r\n\r\n")
        name = re.search(rb'\bname="([^"]*)"', head)
        if not sep or name is None:
            raise _invalid("The multipart body could not be read: a part has no name.")
        filename = re.search(rb'\bfilename="([^"]*)"', head)
        ctype = re.search(rb"(?im)^content-type:\s*([^\r\n;]+)", head)
        found.append(Part(name.group(1).decode("utf-8", "replace"),
                          filename.group(1).decode("utf-8", "replace") if filename else None,
                          ctype.group(1).decode("latin-1").strip().lower() if ctype else None, data))  # fmt: skip
    raise _invalid("The multipart body could not be read: it is truncated.")


def request_and_file(found: list[Part]) -> tuple[Any, Part]:
    """The `request` JSON and the one `file` part, "two parts, sent in this order" (R/decisions/create.md)."""
    names = [p.name for p in found]
    for name in names:
        if name not in (hume.REQUEST_PART, hume.FILE_PART):
            raise _invalid(f"Unknown part {name!r}: send a request part, then a file part.", name)  # ASSUMED code
    if names.count(hume.REQUEST_PART) != 1:
        raise _invalid(f"Send exactly one request part; this request has {names.count(hume.REQUEST_PART)}.",
                       hume.REQUEST_PART)  # fmt: skip
    files = names.count(hume.FILE_PART)
    if files != hume.MAX_FILES:  # D/limits-and-errors: one file per request, else message_invalid
        raise _invalid(f"Send exactly one file part; this request has {files}.", hume.FILE_PART)
    if names[0] != hume.REQUEST_PART:
        raise _invalid("The request part must come before the file part.", hume.REQUEST_PART)
    try:
        request = orjson.loads(found[0].data)
    except orjson.JSONDecodeError:
        raise _invalid("The request part is not valid JSON.", hume.REQUEST_PART) from None  # ASSUMED code
    return request, found[1]


def _question(qid: str, question: Any) -> dict[str, Any]:
    at = pointer(hume.QUESTIONS_KEY, qid)
    if not isinstance(question, dict):
        raise Refusal(hume.QUESTION_INVALID, "A question must be an object.", at)
    for key in question:
        if key not in _QUESTION_KEYS:
            raise Refusal(hume.QUESTION_INVALID, f"Unknown field {key!r} in a question.", at)
    kind = question.get(hume.QUESTION_TYPE_KEY)
    if kind is None:
        raise Refusal(hume.QUESTION_INVALID, f"A question needs its {hume.QUESTION_TYPE_KEY}.", at)
    if kind not in hume.PRIMITIVES:  # D/primitives
        raise Refusal(hume.QUESTION_INVALID, f"{hume.QUESTION_TYPE_KEY} must be one of {', '.join(hume.PRIMITIVES)}.",
                      at + "/" + hume.QUESTION_TYPE_KEY)  # fmt: skip
    instructions = question.get(hume.INSTRUCTIONS_KEY)
    if not isinstance(instructions, str):
        raise Refusal(hume.QUESTION_INVALID, "A question needs its instructions as a string.", at)
    if not instructions.strip():
        raise Refusal(hume.QUESTION_INVALID, "instructions must not be empty.", at + "/" + hume.INSTRUCTIONS_KEY)
    _criteria(kind, question.get(hume.CRITERIA_KEY), at)
    return question


def _criteria(kind: str, criteria: Any, at: str) -> None:
    where = at + "/" + hume.CRITERIA_KEY
    if criteria is None:
        if kind in ("choice", "score"):  # D/primitives: options and levels are what the model chooses among
            raise Refusal(hume.QUESTION_INVALID, f"{kind} questions need criteria.", at)
        return
    if kind == "noul":  # D/primitives: "optionally, say what counts as yes or no"; shape ASSUMED (contract)
        if not isinstance(criteria, dict) or not criteria:
            raise Refusal(hume.QUESTION_INVALID, "noul criteria must be an object with true and/or false.", where)
        for key, text in criteria.items():
            if key not in hume.NOUL_CRITERIA_KEYS or not isinstance(text, str) or not text.strip():
                raise Refusal(hume.QUESTION_INVALID, "noul criteria hold true and false descriptions (strings).",
                              where + pointer(key))  # fmt: skip
    elif kind == "choice":  # D/primitives: "two or more unordered options", each a name and a description
        if not isinstance(criteria, dict):
            raise Refusal(hume.QUESTION_INVALID, "choice criteria must map each option to its description.", where)
        if len(criteria) < hume.MIN_CHOICE_OPTIONS:
            raise Refusal(hume.QUESTION_INVALID,
                          f"choice criteria must define at least {hume.MIN_CHOICE_OPTIONS} options", where)  # fmt: skip
        for name, text in criteria.items():
            if not name.strip() or not isinstance(text, str):
                raise Refusal(hume.QUESTION_INVALID, "Each option needs a name and a description (a string).",
                              where + pointer(name))  # fmt: skip
    elif kind == "score":  # D/errors.md: "score criteria must define at least 2 levels"
        if not isinstance(criteria, list):
            raise Refusal(hume.QUESTION_INVALID, "score criteria must be a list of level descriptions.", where)
        if len(criteria) < hume.MIN_SCORE_LEVELS:
            raise Refusal(hume.QUESTION_INVALID, f"score criteria must define at least {hume.MIN_SCORE_LEVELS} levels",
                          where)  # fmt: skip
        for index, text in enumerate(criteria):
            if not isinstance(text, str) or not text.strip():
                raise Refusal(hume.QUESTION_INVALID, "Each level needs a description.", where + pointer(index))
    elif not isinstance(criteria, str):  # span: criteria undocumented; ASSUMED an optional description
        raise Refusal(hume.QUESTION_INVALID, "span criteria must be a string.", where)


def questions_and_context(request: Any, root_param: str | None) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The questions in the order sent, and the context: R/decisions/create.md, R/decisions/input-tokens.md.
    `root_param` names the whole request object (the part name, or None for a JSON body)."""
    if not isinstance(request, dict):
        raise _invalid("The request must be a JSON object.", root_param)  # ASSUMED code
    for key in request:
        if key not in _REQUEST_KEYS and key != hume.AUDIO_DURATION_KEY:
            raise _invalid(f"Unknown field {key!r}.", root_param)  # ASSUMED code
    raw = request.get(hume.QUESTIONS_KEY)
    if raw is None:
        raise _invalid("questions is required.", root_param)  # ASSUMED code
    if not isinstance(raw, dict):
        raise Refusal(hume.QUESTION_INVALID, "questions must map question IDs to questions.", "/questions")
    if len(raw) < hume.MIN_QUESTIONS:  # ASSUMED minimum (contract)
        raise Refusal(hume.QUESTION_INVALID, "Ask at least one question.", "/questions")
    questions: dict[str, dict[str, Any]] = {}
    for qid, question in raw.items():
        if not qid or len(qid) > hume.MAX_QUESTION_ID_CHARS:  # R/: "any non-empty string of up to 256 characters"
            raise Refusal(hume.QUESTION_INVALID,
                          f"A question ID must be 1 to {hume.MAX_QUESTION_ID_CHARS} characters long.",
                          pointer(hume.QUESTIONS_KEY, qid))  # fmt: skip
        questions[qid] = _question(qid, question)
    spans = sum(1 for q in questions.values() if q[hume.QUESTION_TYPE_KEY] == "span")
    if len(questions) - spans > hume.MAX_RATED_QUESTIONS:  # R/: at most 20 noul, choice and score together
        raise Refusal(hume.QUESTION_INVALID, f"Ask at most {hume.MAX_RATED_QUESTIONS} noul, choice and score "
                      f"questions; this request asks {len(questions) - spans}.", "/questions")  # fmt: skip
    if spans > hume.MAX_SPAN_QUESTIONS:  # R/: and at most 5 span
        raise Refusal(hume.QUESTION_INVALID,
                      f"Ask at most {hume.MAX_SPAN_QUESTIONS} span questions; this request asks {spans}.",
                      "/questions")  # fmt: skip
    context = request.get(hume.CONTEXT_KEY)
    if context is not None:
        if not isinstance(context, str):
            raise _invalid("context must be a string.", "/context")  # ASSUMED code
        if len(context) > hume.MAX_CONTEXT_CHARS:  # R/decisions/create.md: at most 1000 characters
            raise _invalid(f"context is {len(context)} characters; the limit is {hume.MAX_CONTEXT_CHARS}.",
                           "/context")  # ASSUMED code  # fmt: skip
    return questions, context


def token_request(body: bytes) -> tuple[int, dict[str, dict[str, Any]], str | None]:
    """`/input_tokens`: audio_duration_ms (1,000-300,000 since C/2026/11/7), questions and context."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _invalid("The body is not valid JSON.") from None  # ASSUMED code
    if isinstance(request, dict) and hume.AUDIO_DURATION_KEY not in request:
        raise _invalid(f"{hume.AUDIO_DURATION_KEY} is required.")  # ASSUMED code
    questions, context = questions_and_context(request, None)
    duration = request[hume.AUDIO_DURATION_KEY]
    at = "/" + hume.AUDIO_DURATION_KEY
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise _invalid(f"{hume.AUDIO_DURATION_KEY} must be an integer.", at)  # ASSUMED code
    if duration < hume.MIN_AUDIO_MS:
        raise Refusal(hume.AUDIO_TOO_SHORT, f"Audio must be at least {hume.MIN_AUDIO_MS} ms long.", at)
    if duration > hume.MAX_AUDIO_MS:
        raise Refusal(hume.AUDIO_TOO_LONG, f"Audio must be at most {hume.MAX_AUDIO_MS} ms long.", at)
    return duration, questions, context
