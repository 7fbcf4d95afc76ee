"""The report page: summary numbers from the rows, a chart per metric, baseline bands, trends, escaping."""

from __future__ import annotations

import random
import re
from typing import Dict, List

from ansible_collections.rocm.madengine.plugins.module_utils import report_html
from ansible_collections.rocm.madengine.plugins.module_utils.report_html import Baseline, ReportSection


def row(model: str, performance: str = "100", metric: str = "samples_per_second", **extra: str) -> Dict[str, str]:
    values = {
        "model": model,
        "performance": performance,
        "metric": metric,
        "status": "SUCCESS",
        "machine_name": "node1",
        "run_id": "run-a",
        "failure_reason": "",
    }
    values.update(extra)
    return values


def svgs(page: str) -> List[str]:
    return re.findall(r"<svg.*?</svg>", page, flags=re.S)


def test_summary_counts_come_from_the_rows() -> None:
    rng = random.Random(7)
    statuses = [rng.choice(["SUCCESS", "FAILURE", "SKIPPED"]) for _ in range(40)]
    reasons = ["EXIT_CODE", "NO_METRIC", "TIMEOUT"]
    rows = [
        row(f"m{i % 9}", status=status, failure_reason=rng.choice(reasons) if status == "FAILURE" else "")
        for i, status in enumerate(statuses)
    ]
    summary = report_html.summarize(rows)
    assert summary.rows == 40
    assert summary.models == [f"m{i}" for i in range(9)]
    assert summary.statuses == {name: statuses.count(name) for name in ("SUCCESS", "FAILURE", "SKIPPED")}
    expected = {reason: sum(1 for r in rows if r["failure_reason"] == reason) for reason in reasons}
    assert dict(summary.failure_reasons) == {k: v for k, v in expected.items() if v}
    page = report_html.build_page([ReportSection("perf", rows)], charts_as="none").html
    assert f"<b>{statuses.count('FAILURE')}</b><span>FAILURE</span>" in page
    assert "<b>40</b><span>rows</span>" in page


def test_one_chart_per_measured_metric_and_failures_are_not_charted() -> None:
    rows = [
        row("a", "10", "samples_per_second"),
        row("b", "20", "samples_per_second"),
        row("a", "3.5", "latency_ms"),
        row("c", "", "", status="FAILURE", failure_reason="NO_METRIC"),
        row("d", "99", "tokens_per_second", status="FAILURE"),
    ]
    page = report_html.build_page([ReportSection("perf", rows)]).html
    charts = svgs(page)
    assert len(charts) == 2
    assert "samples_per_second" in charts[0] and "latency_ms" in charts[1]
    assert all("<path" in chart or "<rect" in chart for chart in charts)
    assert "tokens_per_second" not in "".join(charts)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # several charts share one page


def test_every_cell_is_escaped() -> None:
    evil = '<script>alert("x")</script>'
    rows = [row(evil, "5", '"><img src=x onerror=alert(1)>', args="$x$ & <u>")]
    page = report_html.build_page([ReportSection(evil, rows)], title=evil).html
    assert "<script" not in page
    assert "<img src=x" not in page and "<u>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "$x$ &amp; &lt;u&gt;" in page


def test_repeats_are_a_median_with_min_max_whiskers() -> None:
    rows = [row("a", value, repeat=str(i + 1)) for i, value in enumerate(["10", "30", "20", "12", "11"])]
    bars, what = report_html.comparison_bars(ReportSection("perf", rows), "samples_per_second")
    assert what == "" and len(bars) == 1 and sorted(bars[0].values) == [10, 11, 12, 20, 30]
    page = report_html.build_page([ReportSection("perf", rows)]).html
    assert "median 12  (n=5, 10–30)" in page


def test_series_are_hosts_or_runs() -> None:
    by_host = [row("a", machine_name="h1"), row("a", machine_name="h2")]
    by_run = [row("a", run_id="r1"), row("a", run_id="r2")]
    assert report_html.comparison_bars(ReportSection("p", by_host), "samples_per_second")[1] == "host"
    bars, what = report_html.comparison_bars(ReportSection("p", by_run), "samples_per_second")
    assert what == "run" and [bar.series for bar in bars] == ["r1", "r2"]


def test_baseline_band_and_verdict_are_drawn() -> None:
    rows = [row("a", "80", verdict="REGRESSED", relative_change="-20.00"), row("b", "100")]
    baselines = {("a", "samples_per_second", ""): Baseline(100.0, 0.05, "higher")}
    section = ReportSection("perf", rows, baselines=baselines)
    bars, _what = report_html.comparison_bars(section, "samples_per_second")
    band = bars[0].band
    assert band is not None and (band.low, band.value, band.high) == (95.0, 100.0, 105.0)
    assert bars[1].band is None
    (chart,) = svgs(report_html.build_page([section]).html)
    assert 'id="c1-baseline-band-0"' in chart and "baseline-band-1" not in chart
    assert "REGRESSED -20.00%" in chart and "higher is better" in chart
    page = report_html.build_page([section], charts_as="none").html
    assert '<td class="REGRESSED">REGRESSED</td>' in page


def test_trends_from_history_with_the_current_run_last() -> None:
    history = [
        {
            "run_id": f"r{i}",
            "finished_at": f"2026-01-0{i + 1}",
            "model": model,
            "metric": "samples_per_second",
            "machine_name": "node1",
            "performance": str(100 + i),
        }
        for i in range(3)
        for model in ("a", "b")
    ]
    history.append({"run_id": "r9", "model": "solo", "metric": "m", "machine_name": "node1", "performance": "1"})
    rows = [row("a", "90", run_id="now", verdict="REGRESSED"), row("b", "100", run_id="r2")]
    baselines = {("a", "samples_per_second", "node1"): Baseline(102.0, 0.1)}
    section = ReportSection("perf", rows, history_rows=history, baselines=baselines)
    found = {trend.model: trend for trend in report_html.trends(section)}
    assert set(found) == {"a", "b"}  # solo was measured once
    assert found["a"].runs == ["r0", "r1", "r2", "now"]
    assert found["a"].lines[0].values == [[100.0], [101.0], [102.0], [90.0]]
    assert found["a"].lines[0].last_verdict == "REGRESSED"
    assert found["b"].runs == ["r0", "r1", "r2"]  # its current row's run is in the history already
    assert found["a"].band is not None and found["b"].band is None
    page = report_html.build_page([section]).html
    assert "Trends over runs" in page
    charts = svgs(page)
    assert len(charts) == 3  # one comparison, two trends
    assert 'id="c2-baseline-band"' in charts[1] and "baseline-band" not in charts[2]
    assert 'id="c2-trend-0"' in charts[1]


def test_no_history_no_trends_and_cid_mode_returns_pngs() -> None:
    section = ReportSection("perf", [row("a"), row("b", metric="ms")])
    assert report_html.trends(section) == []
    page = report_html.build_page([section], charts_as="cid")
    assert [cid for cid, _png in page.images] == ["chart1@madengine", "chart2@madengine"]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for _cid, png in page.images)
    assert page.html.count('src="cid:chart') == 2 and "<svg" not in page.html


def test_table_shows_key_columns_first_then_the_given_order_and_colours_status() -> None:
    rows = [row("a", status="FAILURE", extra_col="x", zeta="1")]
    columns = ["zeta", "performance", "status", "alpha", "model"]
    page = report_html.build_page([ReportSection("p", rows, columns=columns)], charts_as="none").html
    header = re.findall(r"<th>([^<]+)</th>", page.split('<table class="rows">')[1])
    assert header == ["model", "status", "performance", "zeta", "alpha"]
    assert '<td class="FAILURE">FAILURE</td>' in page and "extra_col" not in page
