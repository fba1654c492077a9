"""The table of Hume APIs (app/hume/catalog.py) is written once: README's table, the banner and the retirement
decisions all come from it."""

from __future__ import annotations

from pathlib import Path

from app.commands import startup_banner
from app.config import HUME_CLOUD_URL, HUME_VOICE_URL, Settings
from app.hume import catalog

ROOT = Path(__file__).resolve().parents[2]


def test_readme_table_is_the_catalog() -> None:
    start, end = catalog.README_MARKERS
    readme = (ROOT / "README.md").read_text()
    assert readme.count(start) == 1 and readme.count(end) == 1
    table = readme.split(start)[1].split(end)[0].strip()
    assert table == catalog.markdown_table()
    assert "| TTS | retired 2026-11-13 |" in table  # the comparison can fail on a date


def test_the_catalog_holds_hume_as_of_its_status_block() -> None:
    """HUME.md's status block of 2026-12-04: two live APIs on the cloud host, the voice-era ones retired."""
    states = {api.key: (api.state, api.since.isoformat(), api.host.default) for api in catalog.CATALOG}
    assert states == {
        "v1": ("live", "2026-10-06", HUME_CLOUD_URL),
        "audio_decisions": ("live", "2026-11-02", HUME_CLOUD_URL),
        "batch": ("retired", "2026-06-15", HUME_VOICE_URL),
        "tts": ("retired", "2026-11-13", HUME_VOICE_URL),
        "evi": ("retired", "2026-11-13", HUME_VOICE_URL),
        "tokens": ("undocumented", "2026-11-13", HUME_VOICE_URL),
    }


def test_only_hume_itself_makes_an_api_retired() -> None:
    real = Settings(hume_api_key="k")
    compatible = Settings(hume_api_key="k", hume_voice_url="http://hume-compatible.example")
    one_server = Settings(hume_api_key="k", hume_base_url="http://hume-compatible.example")
    for api in (catalog.BATCH, catalog.TTS, catalog.EVI):
        assert catalog.retired_at_hume(api, real)
        assert not catalog.retired_at_hume(api, Settings())  # the built-in emulator
        assert not catalog.retired_at_hume(api, compatible)
        assert not catalog.retired_at_hume(api, one_server)
    assert not catalog.retired_at_hume(catalog.V1, real)
    assert not catalog.retired_at_hume(catalog.TOKENS, real)  # undocumented: asked, and its answer passed on


def test_banner_shows_both_hosts_and_every_api() -> None:
    emulated = startup_banner.make(Settings(port=9000), "hes_k", "postgresql://db", True, "psql").render()
    assert "Emulator URL: http://127.0.0.1:9001 (for https://api.hume.ai), http://127.0.0.1:9002 (for " in emulated
    real = startup_banner.make(Settings(hume_api_key="k"), "hes_k", "postgresql://db", False, "psql").render()
    assert "Emulator URL: not started" in real
    assert f"Hume: {HUME_CLOUD_URL} (HUME_CLOUD_URL) and {HUME_VOICE_URL} (HUME_VOICE_URL)" in real
    for api in catalog.CATALOG:
        assert api.name in emulated and api.name in real
    tts = next(line for line in real.splitlines() if line.strip().startswith("TTS "))
    assert "retired 2026-11-13" in tts and "not called" in tts
    v1 = next(line for line in real.splitlines() if line.strip().startswith(catalog.V1.name))
    assert v1.endswith(HUME_CLOUD_URL)


def test_a_banner_saved_before_the_cloud_host_still_renders() -> None:
    """run.json written by an older `make run` (no emulator_cloud_url) is still read by `status`."""
    banner = startup_banner.Banner("http://a", "http://e", "k", "db", "psql", True, "the emulator", "logs")
    assert "Emulator URL: http://e (for https://api.hume.ai)" in banner.render()
