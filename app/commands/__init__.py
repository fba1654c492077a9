"""The command line's commands, grouped by what they touch: the servers, the data, the running service."""

from __future__ import annotations
