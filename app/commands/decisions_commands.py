"""`python -m app decisions ask --questions FILE --url URL`: ask Hume's Audio Decisions API a question set about
one recording and print the answers, without a job or the database.

The questions file is a question set as `POST /v1/question-sets` takes it (`{"questions": {...}, "context":
...}`, name optional) or just its `questions` object, checked by the same rules. The URL is fetched through the
service's guarded egress (app.egress: private addresses only with ALLOW_PRIVATE_HOSTS), decoded to 16 kHz mono
WAV, and its first window of at most 5 minutes (Hume's limit per request, D/limits-and-errors) is asked.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import orjson

from app.commands.errors import FAILED, CommandError
from app.config import Settings
from app.hume import decisions_contract as hume


def read_questions(path: str) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Our question shape by ID, in the file's order, and the context; a CommandError naming the pointer."""
    from app.decisions.question_rules import QuestionSetInvalid, question_set_in

    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError(f"{path} must hold a JSON object: a question set, or its questions by ID")
    body = dict(data) if isinstance(data.get("questions"), dict) else {"questions": data}
    body.setdefault("name", Path(path).stem or "questions")
    try:
        draft = question_set_in(body)
    except QuestionSetInvalid as exc:
        raise CommandError(f"{path}: {exc.details['field']}: {exc}") from None
    questions = {
        q["id"]: {key: q[key] for key in (hume.QUESTION_TYPE_KEY, hume.INSTRUCTIONS_KEY, hume.CRITERIA_KEY)
                  if q.get(key) is not None}
        for q in draft.questions
    }  # fmt: skip
    return questions, draft.context


async def ask(
    settings: Settings, url: str, questions: dict[str, dict[str, Any]], context: str | None
) -> tuple[int, int, Any]:
    """(start_ms, end_ms) of the window asked, and the DecisionsResult."""
    from app.egress.download import FetchLimits, download
    from app.egress.errors import EgressError
    from app.egress.pinned import PinnedClient
    from app.egress.url_guard import UrlGuard
    from app.hume.decisions import DecisionsClient, DecisionsError
    from app.media.errors import MediaError
    from app.media.limits import MediaLimits
    from app.media.windows import WindowRules, iter_windows

    rules = WindowRules(window_ms=hume.MAX_AUDIO_MS, min_ms=hume.MIN_AUDIO_MS, max_ms=hume.MAX_AUDIO_MS,
                        merge_below_ms=hume.MIN_AUDIO_MS)  # fmt: skip

    def first_window(path: str) -> Any:
        # The media bounds the service applies (MEDIA_MAX_*); the rest of the file is never decoded.
        return next(iter_windows(path, rules, limits=MediaLimits.from_settings(settings)), None)

    limits = FetchLimits(max_bytes=settings.media_max_bytes, read_timeout_s=settings.media_fetch_read_timeout_s,
                         total_timeout_s=settings.media_fetch_timeout_s)  # fmt: skip
    guard = UrlGuard.from_setting(settings.outbound_allow_list)
    try:
        async with PinnedClient(guard, read_timeout_s=settings.media_fetch_read_timeout_s) as fetcher:
            async with download(fetcher, url, limits) as media:
                window = await asyncio.to_thread(first_window, str(media.path))
    except EgressError as exc:
        raise CommandError(f"{url}: {exc.message}", FAILED) from None
    except MediaError as exc:
        raise CommandError(f"{url}: {exc.message}", FAILED) from None
    if window is None:
        raise CommandError(f"{url}: no audio to ask about", FAILED)
    client = DecisionsClient(api_key=settings.cloud_key, base_url=settings.cloud_url)
    try:
        result = await client.decide(window.wav, "recording.wav", "audio/wav", questions, context)
    except DecisionsError as exc:
        raise CommandError(str(exc), FAILED) from None
    finally:
        await client.aclose()
    return window.start_ms, window.end_ms, result


def _shares(probabilities: dict[str, float] | None) -> str:
    return ", ".join(f"{name} {p:.2f}" for name, p in (probabilities or {}).items())


def describe(answer: hume.Answer) -> str:
    """One answer in a line of a table."""
    kind = answer.primitive
    confidence = "" if answer.confidence is None else f" (confidence {answer.confidence:.2f})"
    if kind == "noul":
        return "unread" if answer.share is None else f"yes {answer.share:.2f}"
    if kind == "choice":
        return f"{answer.choice}{confidence}: {_shares(answer.probabilities)}"
    if kind == "score":
        levels = len(answer.probabilities or answer.legend or {})
        mean = "unread" if answer.score is None else f"{answer.score:.2f}"
        return f"{mean} on 0-{max(levels - 1, 0)}{confidence}: {_shares(answer.probabilities)}"
    spans = answer.spans or []
    return ", ".join(f"{s.start_ms / 1000:.2f}-{'?' if s.end_ms is None else f'{s.end_ms / 1000:.2f}'} s "
                     f"({s.probability:.2f})" for s in spans) or "none"  # fmt: skip


def as_json(start_ms: int, end_ms: int, result: Any) -> dict[str, Any]:
    answers = {}
    for qid, answer in result.answers.items():
        read = {name: value for name in ("share", "choice", "confidence", "probabilities", "score", "legend")
                if (value := getattr(answer, name)) is not None}  # fmt: skip
        if answer.spans is not None:
            read["spans"] = [span._asdict() for span in answer.spans]
        answers[qid] = {"type": answer.primitive, **read, "raw": answer.raw}
    return {"run_id": result.run_id, "input_tokens": result.input_tokens,
            "audio": {"start_ms": start_ms, "end_ms": end_ms}, "answers": answers,
            "unknown_fields": list(result.unknown_fields)}  # fmt: skip


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    questions, context = read_questions(args.questions)
    start_ms, end_ms, result = asyncio.run(ask(settings, args.url, questions, context))
    if args.json:
        print(orjson.dumps(as_json(start_ms, end_ms, result), option=orjson.OPT_INDENT_2).decode(), flush=True)
        return 0
    width = max(len("question"), *(len(qid) for qid in questions))
    lines = [f"{'question':<{width}}  {'type':<6}  answer"]
    for qid, question in questions.items():
        answer = result.answers.get(qid)
        text = "no answer" if answer is None else describe(answer)
        lines.append(f"{qid:<{width}}  {question[hume.QUESTION_TYPE_KEY]:<6}  {text}")
    lines.append("")
    lines.append(f"run {result.run_id}, {result.input_tokens} input tokens, audio {start_ms / 1000:.1f}-"
                 f"{end_ms / 1000:.1f} s of the recording")  # fmt: skip
    if result.unknown_fields:
        lines.append(f"fields not read (kept raw; see --json): {', '.join(result.unknown_fields)}")
    print("\n".join(lines), flush=True)
    return 0


def add_parsers(sub: Any) -> None:
    decisions = sub.add_parser(
        "decisions", help="Audio Decisions: `decisions ask` asks a question set about one recording",
        description="Hume's Audio Decisions API without a job: ask questions about a recording and print the answers.",
    )  # fmt: skip
    actions = decisions.add_subparsers(dest="action", required=True, metavar="ACTION")
    ask_parser = actions.add_parser(
        "ask", help="ask a question set about the first 5 minutes of a media URL and print the answers",
        description="Fetch URL (guarded egress), decode its audio to 16 kHz mono WAV, and ask Hume (HUME_CLOUD_URL) "
        "the questions of FILE about its first window of at most 5 minutes. FILE holds a question set as POST "
        "/v1/question-sets takes it, or just its questions by ID. Each request is billed by Hume by input tokens.",
    )  # fmt: skip
    ask_parser.add_argument("--questions", required=True, metavar="FILE", help="the question set (JSON)")
    ask_parser.add_argument("--url", required=True, help="the recording (any media with audio)")
    ask_parser.add_argument("--json", action="store_true", help="print JSON: what we read and Hume's raw answers")
    ask_parser.set_defaults(func=cmd_ask)
