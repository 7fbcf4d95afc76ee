"""madengine history / compare: the results store, baselines and regression verdicts."""

from __future__ import annotations
