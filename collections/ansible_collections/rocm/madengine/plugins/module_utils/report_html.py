"""The HTML report page: a summary, one chart per metric, trend charts, then every row. Built from plain data
(rows as dicts, history rows, baselines) so that perf.csv files and the results store feed it alike."""

from __future__ import annotations

import collections
import datetime
import html
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from . import perfcsv
from . import report_charts as charts

MAX_SERIES = 8  # a comparison chart shows at most the latest 8 runs (or hosts @ runs)
VERDICTS = ("REGRESSED", "IMPROVED", "UNCHANGED", "NEW", "MISSING")
STATUSES = ("SUCCESS", "FAILURE", "SKIPPED")
# The table shows these first (when the CSV has them), then every other column in the CSV's order.
LEADING_COLUMNS = (
    "model",
    "machine_name",
    "status",
    "verdict",
    "performance",
    "metric",
    "relative_change",
    "repeat",
    "failure_reason",
    "run_id",
)


@dataclass(frozen=True)
class Baseline:
    """A reference value of one model's metric: `tolerance` is relative (0.05 = ±5 %), `direction` says which way
    is better ("higher" for throughputs, "lower" for times and latencies)."""

    value: float
    tolerance: float = 0.05
    direction: str = "higher"

    def band(self) -> charts.Band:
        spread = abs(self.value) * self.tolerance
        return charts.Band(self.value - spread, self.value, self.value + spread)


BaselineKey = Tuple[str, str, str]  # (model, metric, machine_name); machine_name "" = any host


@dataclass
class ReportSection:
    """One part of a page (one CSV file, one run). `rows`: perf.csv rows (dicts of strings). `history_rows`: dicts
    with run_id, finished_at, model, metric, machine_name, performance, oldest first (the section's own rows are
    added as the newest run when their run_id is not among them). `columns`: the table's columns in order
    (default: the rows' keys, first seen first)."""

    title: str
    rows: Sequence[Mapping[str, Any]]
    history_rows: Sequence[Mapping[str, Any]] = field(default_factory=list)
    baselines: Mapping[BaselineKey, Baseline] = field(default_factory=dict)
    columns: Sequence[str] = field(default_factory=list)


@dataclass
class Summary:
    rows: int
    models: List[str]
    metrics: List[str]
    statuses: Dict[str, int]
    failure_reasons: List[Tuple[str, int]]
    verdicts: Dict[str, int]
    run_ids: List[str]
    hosts: List[str]


@dataclass
class Page:
    """The page, and for charts="cid" the PNG images it references as cid:<content id>."""

    html: str
    images: List[Tuple[str, bytes]] = field(default_factory=list)


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value).strip()


def _number(text: Any) -> Optional[float]:
    value = perfcsv.number(text)
    return value if value is not None and math.isfinite(value) else None


def _distinct(rows: Iterable[Mapping[str, Any]], key: str) -> List[str]:
    return list(dict.fromkeys(value for value in (_text(row, key) for row in rows) if value))


def summarize(rows: Sequence[Mapping[str, Any]]) -> Summary:
    statuses = collections.Counter(_text(row, "status") or "(none)" for row in rows)
    reasons = collections.Counter(
        _text(row, "failure_reason") or "(no reason recorded)" for row in rows if _text(row, "status") == "FAILURE"
    )
    verdicts = collections.Counter(_text(row, "verdict") for row in rows if _text(row, "verdict"))
    ordered = {status: statuses.pop(status, 0) for status in STATUSES}
    ordered.update(sorted(statuses.items()))
    return Summary(
        rows=len(rows),
        models=_distinct(rows, "model"),
        metrics=_distinct(rows, "metric"),
        statuses=ordered,
        failure_reasons=reasons.most_common(),
        verdicts={verdict: verdicts[verdict] for verdict in VERDICTS if verdicts[verdict]},
        run_ids=_distinct(rows, "run_id"),
        hosts=_distinct(rows, "machine_name"),
    )


def _measured(rows: Iterable[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """Rows that measured something: a metric, a finite performance, and not a failure."""
    return [
        row
        for row in rows
        if _text(row, "metric")
        and _number(row.get("performance")) is not None
        and _text(row, "status") in ("", "SUCCESS")
    ]


def _baseline(section: ReportSection, model: str, metric: str, host: str) -> Optional[Baseline]:
    return section.baselines.get((model, metric, host)) or section.baselines.get((model, metric, ""))


def comparison_bars(section: ReportSection, metric: str) -> Tuple[List[charts.Bar], str]:
    """The bars of one metric's chart and what the series are ("" / "host" / "run" / "host @ run")."""
    rows = [row for row in _measured(section.rows) if _text(row, "metric") == metric]
    hosts, runs = _distinct(rows, "machine_name"), _distinct(rows, "run_id")
    several_hosts, several_runs = len(hosts) > 1, len(runs) > 1

    def series_of(row: Mapping[str, Any]) -> str:
        host, run = _text(row, "machine_name"), _text(row, "run_id")
        if several_hosts and several_runs:
            return f"{host} @ {run}"
        return host if several_hosts else run if several_runs else ""

    kept = list(dict.fromkeys(series_of(row) for row in rows))[-MAX_SERIES:]
    groups: Dict[Tuple[str, str], List[Mapping[str, Any]]] = {}
    for row in rows:
        if series_of(row) in kept:
            groups.setdefault((_text(row, "model"), series_of(row)), []).append(row)
    bars = []
    for (model, series), members in groups.items():
        verdict = next((_text(row, "verdict") for row in members if _text(row, "verdict")), "")
        change = next((_text(row, "relative_change") for row in members if _text(row, "relative_change")), "")
        baseline = _baseline(section, model, metric, _text(members[0], "machine_name"))
        bars.append(
            charts.Bar(
                model=model,
                series=series,
                values=[_number(row.get("performance")) or 0.0 for row in members],
                verdict=verdict if verdict in VERDICTS else "",
                change=change,
                band=baseline.band() if baseline else None,
            )
        )
    what = (
        "host @ run" if several_hosts and several_runs else "host" if several_hosts else "run" if several_runs else ""
    )
    return bars, what


def _direction(section: ReportSection, metric: str) -> str:
    directions = {baseline.direction for key, baseline in section.baselines.items() if key[1] == metric}
    return directions.pop() if len(directions) == 1 else ""


@dataclass
class Trend:
    model: str
    metric: str
    runs: List[str]
    lines: List[charts.TrendLine]
    band: Optional[charts.Band]


def trends(section: ReportSection) -> List[Trend]:
    """One trend per (model, metric) measured in at least two runs of the history plus this section's rows."""
    if not section.history_rows:
        return []
    points = _measured(section.history_rows)
    known = {_text(row, "run_id") for row in points}
    points += [row for row in _measured(section.rows) if _text(row, "run_id") not in known]
    runs = _distinct(points, "run_id")
    verdicts = {
        (_text(row, "model"), _text(row, "metric"), _text(row, "machine_name")): _text(row, "verdict")
        for row in section.rows
        if _text(row, "verdict")
    }
    values: Dict[Tuple[str, str], Dict[str, Dict[str, List[float]]]] = {}
    for row in points:
        by_host = values.setdefault((_text(row, "model"), _text(row, "metric")), {})
        by_run = by_host.setdefault(_text(row, "machine_name"), {})
        by_run.setdefault(_text(row, "run_id"), []).append(_number(row.get("performance")) or 0.0)
    result = []
    for (model, metric), by_host in values.items():
        seen = [run for run in runs if any(run in by_run for by_run in by_host.values())]
        if len(seen) < 2:
            continue
        lines = [
            charts.TrendLine(
                label=host if len(by_host) > 1 else "",
                values=[by_run.get(run, []) for run in seen],
                last_verdict=verdicts.get((model, metric, host), ""),
            )
            for host, by_run in by_host.items()
        ]
        hosts = list(by_host)
        baseline = _baseline(section, model, metric, hosts[0] if len(hosts) == 1 else "")
        result.append(Trend(model, metric, seen, lines, baseline.band() if baseline else None))
    return result


_CSS = """
body{font-family:"DejaVu Sans",Verdana,Arial,sans-serif;margin:24px;color:#212121;background:#fff;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #4C72B0;padding-bottom:4px}
h3{font-size:15px;margin:20px 0 8px}.meta{color:#757575;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.card{border:1px solid #E0E0E0;border-radius:6px;padding:8px 14px;min-width:90px;background:#FAFAFA}
.card b{display:block;font-size:22px}.card span{color:#616161;font-size:12px}
.card.SUCCESS b,.card.IMPROVED b{color:#2E7D32}.card.FAILURE b,.card.REGRESSED b{color:#C62828}
.card.SKIPPED b,.card.MISSING b{color:#EF6C00}.card.NEW b{color:#1565C0}
.facts{border-collapse:collapse;margin:8px 0}.facts th{text-align:left;padding:2px 12px 2px 0;color:#616161;
font-weight:normal;vertical-align:top}.facts td{padding:2px 0}
.chart{margin:10px 0 18px}.chart svg,.chart img{max-width:100%;height:auto}
.trends{display:flex;flex-wrap:wrap;gap:8px}.trends .chart{width:460px;margin:0}
.scroll{overflow-x:auto;border:1px solid #E0E0E0}
table.rows{border-collapse:collapse;font-size:12px;white-space:nowrap}
table.rows th{background:#ECEFF1;position:sticky;top:0;text-align:left}
table.rows th,table.rows td{border:1px solid #E0E0E0;padding:3px 6px}
table.rows tr:nth-child(even) td{background:#FAFAFA}td.num{text-align:right}
td.SUCCESS,td.IMPROVED{background:#E8F5E9!important;color:#1B5E20;font-weight:bold}
td.FAILURE,td.REGRESSED{background:#FFEBEE!important;color:#B71C1C;font-weight:bold}
td.SKIPPED,td.MISSING{background:#FFF3E0!important;color:#E65100;font-weight:bold}
td.NEW{background:#E3F2FD!important;color:#0D47A1;font-weight:bold}td.UNCHANGED{color:#424242;font-weight:bold}
.none{color:#757575;font-style:italic}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _listing(values: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(_e(value) for value in values[:limit])
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return (shown + more) or '<span class="none">none</span>'


def summary_html(summary: Summary) -> str:
    cards = [("rows", summary.rows, ""), ("models", len(summary.models), "")]
    cards += [(status, count, status) for status, count in summary.statuses.items()]
    cards += [(verdict, count, verdict) for verdict, count in summary.verdicts.items()]
    parts = ['<div class="cards">']
    parts += [f'<div class="card {_e(css)}"><b>{count}</b><span>{_e(name)}</span></div>' for name, count, css in cards]
    parts.append("</div>")
    reasons = ", ".join(f"{_e(reason)} ({count})" for reason, count in summary.failure_reasons)
    facts = [
        ("failure reasons", reasons or '<span class="none">none</span>'),
        ("metrics", _listing(summary.metrics)),
        ("runs", _listing(summary.run_ids)),
        ("hosts", _listing(summary.hosts)),
    ]
    parts.append('<table class="facts">')
    parts += [f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts]
    parts.append("</table>")
    return "\n".join(parts)


def _cell(column: str, value: Any) -> str:
    text = "" if value is None else str(value)
    css = []
    if column in ("status", "verdict") and text in STATUSES + VERDICTS:
        css.append(text)
    elif _number(text) is not None:
        css.append("num")
    attr = f' class="{" ".join(css)}"' if css else ""
    return f"<td{attr}>{_e(text)}</td>"


def table_html(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    names = list(columns) or list(dict.fromkeys(key for row in rows for key in row))
    names = [name for name in LEADING_COLUMNS if name in names] + [n for n in names if n not in LEADING_COLUMNS]
    parts = ['<div class="scroll"><table class="rows">', "<thead><tr>"]
    parts += [f"<th>{_e(name)}</th>" for name in names]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(_cell(name, row.get(name)) for name in names) + "</tr>")
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


class _Renderer:
    """Charts as inline SVG ("svg"), as <img src="cid:..."> with the PNGs kept for a message ("cid"), or none."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.images: List[Tuple[str, bytes]] = []

    def __call__(self, chart: charts.Chart) -> str:
        number = len(self.images) + 1
        if self.mode == "cid":
            cid = f"chart{number}@madengine"
            self.images.append((cid, charts.to_png(chart)))
            return f'<div class="chart"><img src="cid:{cid}" alt="{_e(chart.alt[:300])}"></div>'
        self.images.append(("", b""))
        return f'<div class="chart">{charts.to_svg(chart, f"c{number}")}</div>'


def section_html(section: ReportSection, render: Optional[_Renderer], heading: bool = True) -> str:
    summary = summarize(section.rows)
    parts = [f"<section><h2>{_e(section.title)}</h2>" if heading else "<section>", summary_html(summary)]
    if render is not None:
        measured = _distinct(_measured(section.rows), "metric")
        parts.append("<h3>Performance by metric</h3>")
        if not measured:
            parts.append('<p class="none">No row measured a performance.</p>')
        for metric in measured:
            bars, what = comparison_bars(section, metric)
            chart = charts.comparison_chart(metric, bars, _direction(section, metric), what)
            parts.append(render(chart))
        found = trends(section)
        if found:
            parts.append("<h3>Trends over runs</h3>")
            parts.append('<div class="trends">')
            for trend in found:
                parts.append(render(charts.trend_chart(trend.model, trend.metric, trend.runs, trend.lines, trend.band)))
            parts.append("</div>")
    parts.append(f"<h3>All rows ({len(section.rows)})</h3>")
    parts.append(table_html(section.rows, section.columns))
    parts.append("</section>")
    return "\n".join(parts)


def build_page(
    sections: Sequence[ReportSection],
    title: str = "madengine report",
    generated_at: Optional[datetime.datetime] = None,
    charts_as: str = "svg",
) -> Page:
    """A self-contained page (no JavaScript, nothing fetched). charts_as: "svg" (inline), "cid" (PNG images for a
    multipart/related message, returned in Page.images) or "none"."""
    when = (generated_at or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    render = None if charts_as == "none" else _Renderer(charts_as)
    body = [f"<h1>{_e(title)}</h1>", f'<p class="meta">Generated {_e(when)} by madengine</p>']
    body += [section_html(section, render, heading=len(sections) > 1) for section in sections]
    page = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head><body>",
            *body,
            "</body></html>",
            "",
        ]
    )
    images = [image for image in (render.images if render else []) if image[0]]
    return Page(page, images)


def summary_text(sections: Sequence[ReportSection]) -> str:
    """The plain-text part of a message: per section its counts and failure reasons."""
    lines = []
    for section in sections:
        summary = summarize(section.rows)
        counts = ", ".join(f"{count} {name}" for name, count in {**summary.statuses, **summary.verdicts}.items())
        lines.append(f"{section.title}: {summary.rows} rows, {len(summary.models)} models ({counts})")
        lines += [f"  {reason}: {count}" for reason, count in summary.failure_reasons]
    lines.append("")
    lines.append("The full report with charts is the HTML part of this message (and attached).")
    return "\n".join(lines) + "\n"


def subject_of(title: str, sections: Sequence[ReportSection]) -> str:
    totals: collections.Counter = collections.Counter()
    for section in sections:
        summary = summarize(section.rows)
        totals.update({k: v for k, v in summary.statuses.items() if v})
        totals.update(summary.verdicts)
    counts = ", ".join(f"{count} {name}" for name, count in totals.items() if name in STATUSES + ("REGRESSED",))
    return f"madengine report: {title}" + (f" ({counts})" if counts else "")
