"""Decoding Hume's predictions into rows, and placing scores by emotion name (no database)."""

from __future__ import annotations

import json
import random
import struct
from typing import Any

import pytest

from app.batch.hume_documents import source_records
from app.core.prediction_rows import EmotionScore, PredictionFormatError
from app.hume import predictions
from app.hume.emotions import CANONICAL, EXPRESSIONS_48
from app.store import emotion_order, ingest, pgbinary
from bench import payloads
from tests.fixtures import REAL_PREDICTIONS


def _order() -> emotion_order.EmotionOrder:
    return emotion_order.EmotionOrder({m: {n: i for i, n in enumerate(names)} for m, names in CANONICAL.items()})


def _document(models: dict[str, Any], *, source: dict[str, Any] | None = None) -> bytes:
    return json.dumps(
        [
            {
                "source": source or {"type": "url", "url": "https://example.com/a.mp4"},
                "results": {"predictions": [{"file": "a.mp4", "models": models}], "errors": []},
            }
        ]
    ).encode()


def _scores(names: list[str], rng: random.Random) -> list[dict[str, Any]]:
    return [{"name": n, "score": rng.random()} for n in names]


def test_real_fixture_decodes_with_its_four_tracked_faces() -> None:
    """The real Hume payload decodes into 1,075 face rows in groups face_0..face_3 with every field kept."""
    raw = json.loads(REAL_PREDICTIONS.read_bytes())
    rows = list(predictions.rows(predictions.decode(REAL_PREDICTIONS.read_bytes())))
    assert len(rows) == 1075
    assert {r.group_id for r in rows} == {"face_0", "face_1", "face_2", "face_3"}
    assert {r.model for r in rows} == {"face"}
    first_group = raw[0]["results"]["predictions"][0]["models"]["face"]["grouped_predictions"][0]
    expected = first_group["predictions"][0]
    row = next(r for r in rows if r.group_id == first_group["id"])
    assert row.file == "feelings_lab.mp4"
    assert row.frame == expected["frame"]
    assert row.time_begin == row.time_end == expected["time"]
    assert row.prob == expected["prob"]
    assert row.box == [expected["box"][k] for k in "xywh"]
    assert [(s.name, s.score) for s in row.scores] == [(e["name"], e["score"]) for e in expected["emotions"]]
    assert row.extras is None  # facs and descriptions were null
    files = predictions.source_files(predictions.decode(REAL_PREDICTIONS.read_bytes())[0])
    assert files == [{"file": "feelings_lab.mp4", "file_type": "video_no_audio", "metadata": {}}]


def test_shuffled_emotion_order_lands_scores_by_name() -> None:
    """Scores listed in any order end up at their emotion's canonical position."""
    rng = random.Random(7)
    names = list(EXPRESSIONS_48)
    rng.shuffle(names)
    emotions = _scores(names, rng)
    pred = {"frame": 0, "time": 0.0, "prob": 0.99, "box": {"x": 1, "y": 2, "w": 3, "h": 4}, "emotions": emotions}
    doc = _document({"face": {"metadata": None, "grouped_predictions": [{"id": "unknown", "predictions": [pred]}]}})
    [row] = predictions.rows(predictions.decode(doc))
    placed = _order().place("face", row.scores)
    by_name = {e["name"]: e["score"] for e in emotions}
    assert placed == [by_name[n] for n in EXPRESSIONS_48]


def test_unknown_emotion_names_are_reported_not_dropped() -> None:
    """A name the model's order lacks stops placement until the order is extended; then it gets the next
    position and the others keep theirs."""
    order = _order()
    rng = random.Random(1)
    scores = [EmotionScore(e["name"], e["score"]) for e in _scores([*EXPRESSIONS_48, "Wistfulness"], rng)]
    assert order.plan("face", scores) is None
    assert order.unknown("face", scores) == ["Wistfulness"]
    order.positions["face"]["Wistfulness"] = len(EXPRESSIONS_48)
    placed = order.place("face", scores)
    assert placed == [s.score for s in scores]
    assert order.names("face")[-1] == "Wistfulness"
    # A list without the new name stays 48 long: later positions are simply not scored.
    assert len(order.place("face", scores[:48])) == 48


def test_every_model_round_trips_into_rows() -> None:
    """Face facs/descriptions, prosody time ranges and speakers, burst descriptions, language text,
    positions, sentiment and toxicity, NER entity fields, facemesh, archives, per-file errors, failed
    sources and text sources all reach the rows and source records."""
    document = payloads.every_model()
    raw = json.loads(document)
    sources = predictions.decode(document)
    rows = list(predictions.rows(sources))
    expected = [
        (i, fp["file"], model, group["id"], p)
        for i, s in enumerate(raw)
        for fp in (s["results"] or {}).get("predictions", [])
        for model, result in fp["models"].items()
        for group in result["grouped_predictions"]
        for p in group["predictions"]
    ]
    assert len(rows) == len(expected)
    assert {r.model for r in rows} == {"face", "prosody", "burst", "language", "ner", "facemesh"}
    for row, (index, file, model, group, p) in zip(rows, expected, strict=True):
        assert (row.source_index, row.file, row.model, row.group_id) == (index, file, model, group)
        assert [s.score for s in row.scores] == [e["score"] for e in p["emotions"]]
        extras = json.loads(row.extras) if row.extras else {}
        time = p.get("time")
        if isinstance(time, dict):
            assert (row.time_begin, row.time_end) == (time["begin"], time["end"])
        if "position" in p:
            assert (row.position_begin, row.position_end) == (p["position"]["begin"], p["position"]["end"])
        for key in ("text", "confidence", "speaker_confidence", "frame", "prob"):
            if p.get(key) is not None:
                assert getattr(row, key) == p[key], key
        for key in ("facs", "descriptions", "sentiment", "toxicity", "entity", "entity_confidence", "support",
                    "uri", "link_word"):  # fmt: skip
            assert extras.get(key) == p.get(key), key
    by_model = {r.model: r for r in rows}
    assert by_model["face"].group_id in {"face_0", "face_1"}
    assert json.loads(by_model["face"].extras or b"{}")["facs"]
    assert json.loads(by_model["burst"].extras or b"{}")["descriptions"]
    prosody = by_model["prosody"]
    assert prosody.time_begin is not None and prosody.time_end is not None and prosody.time_end > prosody.time_begin
    assert (prosody.group_id or "").startswith("spk_")
    language = [r for r in rows if r.model == "language"]
    assert any(r.time_begin is None for r in language)  # from raw text
    assert all(r.position_begin is not None for r in language)
    assert len(language[0].scores) == 53
    records = source_records(sources)
    assert [r.kind for r in records] == ["url", "url", "url", "text"]
    archive = records[1]
    assert len(archive.files) >= 2 and all(f["file"].startswith("clips/") for f in archive.files)
    assert archive.file_errors and archive.file_errors[0]["file"].startswith("clips/")
    assert records[2].error and "404" in records[2].error
    assert records[0].files[0]["metadata"]["prosody"]["detected_language"] == "en"
    assert ingest.error_count(records) == 2


def test_file_sources_keep_name_type_and_md5() -> None:
    """An uploaded file's source keeps its filename, content type and md5; a URL given on import fills in
    only URL sources that lack one."""
    source = {"type": "file", "filename": "call.wav", "content_type": "audio/wav", "md5sum": "d41d8cd98f00b204"}
    sources = predictions.decode(_document({}, source=source))
    [record] = source_records(sources, default_url="https://example.com/ignored")
    assert (record.kind, record.filename, record.content_type, record.md5sum) == (
        "file", "call.wav", "audio/wav", "d41d8cd98f00b204",
    )  # fmt: skip
    assert record.url is None
    [url_record] = source_records(
        predictions.decode(_document({}, source={"type": "url"})), default_url="https://example.com/given.mp4"
    )
    assert url_record.url == "https://example.com/given.mp4"


@pytest.mark.parametrize("body", [b"{}", b"not json", b'[{"results": {"predictions": 3}}]'])
def test_not_a_predictions_array_is_refused_clearly(body: bytes) -> None:
    """A document that is not Hume's predictions array raises PredictionFormatError, not a crash."""
    with pytest.raises(PredictionFormatError):
        predictions.decode(body)


def test_binary_real_array_encodes_what_postgres_expects() -> None:
    """The hand-built real[] field has the array_send layout, values in order, NULL elements marked."""
    values = [0.5, 0.25, 1.0]
    field = pgbinary.float4_array(pgbinary.float4_values(values))
    length, ndim, has_null, oid, size, lower = struct.unpack(">6i", field[:24])
    assert (length, ndim, has_null, oid, size, lower) == (len(field) - 4, 1, 0, 700, 3, 1)
    items = [struct.unpack(">if", field[24 + 8 * i : 32 + 8 * i]) for i in range(3)]
    assert items == [(4, v) for v in values]
    sparse = pgbinary.float4_array_nullable([0.5, None])
    assert struct.unpack(">6i", sparse[:24])[:3] == (len(sparse) - 4, 1, 1)
    assert sparse[24:32] == struct.pack(">if", 4, 0.5) and sparse[32:36] == pgbinary.NULL
    # The sparse encoder (positions given) writes the same bytes as the element-by-element one.
    gappy: list[float | None] = [None, 0.5, None, None, 0.25, None]
    present = [(i, v) for i, v in enumerate(gappy) if v is not None]
    assert pgbinary.float4_array_sparse(len(gappy), present) == pgbinary.float4_array_nullable(gappy)
    # So do the listed encoder (positions and packed values), a gap past its table of gaps included, and the
    # one-pack box encoder.
    wide: list[float | None] = [None] * 700 + [0.5, None, 0.25] + [None] * 600 + [1.0, None]
    at = [i for i, v in enumerate(wide) if v is not None]
    packed = pgbinary.float4_values([v for v in wide if v is not None])
    assert pgbinary.float4_array_listed(len(wide), at, packed) == pgbinary.float4_array_nullable(wide)
    box = [10.0, 20.5, 100.0, 120.25]
    assert pgbinary.float4_array_of(box) == pgbinary.float4_array(pgbinary.float4_values(box))


def test_stats_merge_complete_rows_of_two_widths_and_rows_with_gaps() -> None:
    """Per-position count, mean and max fold together complete rows (packed, two widths after the order
    grew) and rows with gaps, using the float4 values that are stored."""
    stats = ingest.StatsAccumulator()
    rows: list[list[float | None]] = [[0.5, 0.25], [0.75, 0.5], [0.125, 0.5, 1.0], [None, 0.25, 0.5]]
    for values in rows:
        stats.count(0, "face")
        if None in values:
            stats.add_present(0, "face", [(i, v) for i, v in enumerate(values) if v is not None])
        else:
            clean = [v for v in values if v is not None]
            stats.add_packed(0, "face", len(clean), pgbinary.float4_values(clean))
    stats.count(1, "face")
    stats.add_packed(1, "face", 1, pgbinary.float4_values([0.3]))
    got = {(s, m, p): (n, mean, peak) for s, m, p, n, mean, peak in stats.results()}
    assert got[(0, "face", 0)] == (3, (0.5 + 0.75 + 0.125) / 3, 0.75)
    assert got[(0, "face", 1)] == (4, (0.25 + 0.5 + 0.5 + 0.25) / 4, 0.5)
    assert got[(0, "face", 2)] == (2, 0.75, 1.0)
    n, mean, peak = got[(1, "face", 0)]
    assert n == 1 and mean == peak == struct.unpack(">f", struct.pack(">f", 0.3))[0]
    assert stats.rows == {(0, "face"): 4, (1, "face"): 1}


def test_nul_characters_become_replacement_characters_and_literal_text_stays() -> None:
    """An escaped NUL anywhere in the document (text, names, extras) decodes as U+FFFD, which Postgres can
    store; the six characters `\\u0000` written as text (an escaped backslash before them) are kept as
    they are."""
    pred = {
        "text": "bad\x00byte",
        "position": {"begin": 0, "end": 8},
        "emotions": [{"name": "Joy", "score": 0.5}],
        "sentiment": [{"name": "1\x00", "score": 0.25}],
    }
    literal = {"text": "C:\\u0000", "position": {"begin": 9, "end": 17}, "emotions": [{"name": "Joy", "score": 0.1}]}
    groups = [{"id": "g\x00", "predictions": [pred, literal]}]
    doc = _document({"language": {"grouped_predictions": groups}})
    assert b"\\u0000" in doc  # json.dumps escapes NUL
    first, second = predictions.rows(predictions.decode(doc))
    assert first.text == "bad\ufffdbyte" and first.group_id == "g\ufffd"
    assert json.loads(first.extras or b"{}")["sentiment"][0]["name"] == "1\ufffd"
    assert second.text == "C:\\u0000"
