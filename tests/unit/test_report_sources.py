"""A report section's baseline bands come from a comparison: median ± the tolerance given in percent."""

from __future__ import annotations

import pytest

from ansible_collections.rocm.madengine.plugins.module_utils import compare, report_sources


def row(performance: str, metric: str = "samples_per_second", machine: str = "h") -> dict:
    return {"model": "m", "metric": metric, "machine_name": machine, "performance": performance, "status": "SUCCESS"}


@pytest.mark.parametrize("tolerance, low, high", [(5.0, 95.0, 105.0), (12.5, 87.5, 112.5)])
def test_band_is_the_baseline_median_plus_minus_the_percent_tolerance(tolerance: float, low: float, high: float):
    comparison = compare.compare_rows([row("100"), row("99"), row("101")], [row("90")], tolerance)
    (band,) = [baseline.band() for baseline in report_sources.baseline_bands(comparison).values()]
    assert (band.low, band.value, band.high) == pytest.approx((low, 100.0, high))


def test_keys_without_a_current_sample_get_no_band():
    comparison = compare.compare_rows([row("100"), row("5", metric="ms")], [row("90")], 5.0)
    bands = report_sources.baseline_bands(comparison)
    assert list(bands) == [("m", "samples_per_second", "h")]
    assert bands[("m", "samples_per_second", "h")].direction == "higher"
