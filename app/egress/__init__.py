"""Outbound HTTP that cannot be turned against us: every URL is checked after resolution, and the
address that was checked is the one connected to (media fetching now, our outbound webhooks later)."""

from __future__ import annotations
