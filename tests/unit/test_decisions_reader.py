"""The tolerant reader of Hume's Audio Decisions answers (app/hume/decisions_contract.py): the documented fields,
the likely other spellings of the undocumented ones, what can be derived when a field is absent, and the raw
answer and unknown fields kept whatever came. Also how our question shape goes on the wire."""

from __future__ import annotations

from typing import Any

import pytest

from app.hume import decisions_contract as hume
from app.hume.decisions_contract import Span, question_wire, read_answer, read_input_tokens, read_response


@pytest.mark.parametrize(
    "raw", [{"noul": 0.7}, {"probability": 0.7}, {"share": 0.7}, 0.7, "0.7", {"probabilities": {"true": 0.7}}]
)
def test_a_noul_share_in_any_spelling(raw: Any) -> None:
    answer = read_answer("noul", raw)
    assert answer.share == 0.7 and answer.raw == raw and answer.unknown_fields == ()


def test_a_choice_is_the_option_with_the_largest_share_when_unnamed() -> None:
    """D/primitives: `choice` is the option with the largest share."""
    answer = read_answer("choice", {"probabilities": {"a": 0.2, "b": 0.5, "c": 0.3}, "confidence": 0.1})
    assert (answer.choice, answer.confidence) == ("b", 0.1)
    listed = read_answer("choice", {"probabilities": [{"name": "a", "p": 0.9}, {"name": "b", "p": 0.1}]})
    assert listed.choice == "a" and listed.probabilities == {"a": 0.9, "b": 0.1}


def test_a_score_is_the_mean_level_when_only_shares_came() -> None:
    """D/interpreting-answers: `score` is the mean level (0-based, probability-weighted)."""
    answer = read_answer("score", {"probabilities": [0.25, 0.25, 0.5], "legend": ["lo", "mid", "hi"]})
    assert answer.score == pytest.approx(1.25)
    assert answer.legend == {"0": "lo", "1": "mid", "2": "hi"}
    assert read_answer("score", {"score": 3.2, "probabilities": {"0": 1.0}}).score == 3.2


def test_spans_in_ms_sorted_by_start_with_unknown_fields_named() -> None:
    """C/2026/12/1: spans sorted by audio_start_ms; the end's key is unseen (audio_end_ms or end_ms read)."""
    raw = {"spans": [{"audio_start_ms": 900.4, "audio_end_ms": 1200, "probability": 0.6, "label": "ring"},
                     {"start_ms": 100, "probability": 0.8}, {"probability": 0.9}]}  # fmt: skip
    answer = read_answer("span", raw)
    assert answer.spans == [Span(100, None, 0.8), Span(900, 1200, 0.6)]
    assert answer.unknown_fields == ("spans[].label",)
    assert read_answer("span", []).spans == []


def test_unreadable_values_stay_none_and_the_raw_answer_is_kept() -> None:
    for raw in ({"noul": "lots"}, {"noul": True}, {"noul": float("nan")}, None, ["x"]):
        answer = read_answer("noul", raw)
        assert answer.share is None and answer.raw == raw
    odd = read_answer("choice", {"winner": "a", "type": "choice"})
    assert odd.choice is None and odd.unknown_fields == ("winner",)


def test_a_response_in_each_container_shape() -> None:
    primitives = {"a": "noul", "b": "span"}
    keyed = {"run_id": "r", "answers": {"a": {"noul": 0.1}, "b": {"spans": []}}, "received": {"input_tokens": 9}}
    listed = {"run_id": "r", "results": [{"question_id": "a", "noul": 0.1}, {"id": "b", "spans": []}],
              "usage": {"input_tokens": 9}}  # fmt: skip
    flat = {"run_id": "r", "a": {"noul": 0.1}, "b": {"spans": []}, "input_tokens": 9}
    for body in (keyed, listed, flat):
        run_id, answers, tokens, raw = read_response(body, primitives)
        assert (run_id, tokens, raw) == ("r", 9, body)
        assert answers["a"].share == 0.1 and answers["b"].spans == []
    assert hume.unknown_response_fields(flat, primitives) == ()
    assert hume.unknown_response_fields({**keyed, "model": "m"}, primitives) == ("model",)


def test_without_the_request_the_answer_names_or_shows_its_primitive() -> None:
    body = {"answers": {"n": {"type": "noul", "noul": 0.4}, "s": {"spans": []}, "c": {"choice": "x"},
                        "l": {"score": 2.0, "legend": ["a", "b", "c"]}}}  # fmt: skip
    answers = read_response(body).answers
    assert {qid: a.primitive for qid, a in answers.items()} == {"n": "noul", "s": "span", "c": "choice", "l": "score"}


def test_the_input_token_estimate_in_any_spelling() -> None:
    assert [read_input_tokens(b) for b in ({"input_tokens": 12}, {"received": {"input_tokens": 12}}, 12, {})] == [
        12, 12, 12, None]  # fmt: skip


def test_questions_go_on_the_wire_in_order_without_empty_criteria() -> None:
    questions: dict[str, dict[str, Any]] = {
        "z": {"type": "span", "instructions": "When?", "criteria": None},
        "a": {"type": "score", "instructions": "How?", "criteria": ("low", "high")},
    }
    wire = hume.request_wire(questions, None)
    assert list(wire["questions"]) == ["z", "a"] and "context" not in wire
    assert wire["questions"]["z"] == {"type": "span", "instructions": "When?"}
    assert question_wire(questions["a"])["criteria"] == ["low", "high"]
