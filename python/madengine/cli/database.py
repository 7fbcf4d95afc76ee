"""madengine database: upload perf.csv (or a JSON file of rows) to MongoDB."""

from __future__ import annotations
