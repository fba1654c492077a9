"""Media preparation for Hume's v1 API with PyAV: 16 kHz mono PCM chunks and sampled JPEG frames."""

from __future__ import annotations
