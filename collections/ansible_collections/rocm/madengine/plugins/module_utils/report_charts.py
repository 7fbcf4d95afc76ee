"""Report charts drawn with matplotlib (imported lazily, no pyplot, no global state): a comparison of models per
metric and a performance trend over runs; rendered as SVG for a page or PNG for an e-mail."""

from __future__ import annotations

import html
import io
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence

SERIES_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974")
VERDICT_COLOURS = {
    "REGRESSED": "#C62828",
    "IMPROVED": "#2E7D32",
    "UNCHANGED": "#616161",
    "NEW": "#1565C0",
    "MISSING": "#EF6C00",
}
BAND_COLOUR = "#9E9E9E"
_RC = {
    "svg.fonttype": "none",  # text stays text: small, selectable, searchable
    "svg.hashsalt": "madengine",  # stable ids from run to run
    "text.parse_math": False,  # model names are user data: a '$' is a '$'
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titleweight": "bold",
    "axes.titlesize": 10,
}


@dataclass
class Band:
    """A baseline drawn as `value` with a shaded band from `low` to `high`."""

    low: float
    value: float
    high: float


@dataclass
class Bar:
    """One bar of a comparison chart: the values of one model in one series (several values: repeats, drawn as
    their median with min-max whiskers)."""

    model: str
    series: str
    values: List[float]
    verdict: str = ""
    change: str = ""
    band: Optional[Band] = None


@dataclass
class TrendLine:
    """One line of a trend chart: per run (in the chart's run order) the values measured then, or none."""

    label: str
    values: List[List[float]]
    last_verdict: str = ""


@dataclass
class Chart:
    """A drawn figure, kept until rendered (each render closes nothing: figures are garbage collected)."""

    title: str
    figure: Any = field(repr=False)
    alt: str = ""


def _matplotlib() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    return matplotlib


@dataclass
class _Stats:
    median: float
    low: float
    high: float
    count: int


def _stats(values: Sequence[float]) -> _Stats:
    return _Stats(statistics.median(values), min(values), max(values), len(values))


def number(value: float) -> str:
    """A value as a performance engineer reads it: thousands separated, 4 significant digits below 1000."""
    if abs(value) >= 1000 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def comparison_chart(metric: str, bars: Sequence[Bar], direction: str = "", series_title: str = "") -> Chart:
    """Horizontal bars, one group per model (top to bottom in first-seen order), one bar per series."""
    matplotlib = _matplotlib()
    models = list(dict.fromkeys(entry.model for entry in bars))
    series = list(dict.fromkeys(entry.series for entry in bars))
    per_bar = 0.8 / len(series)
    with matplotlib.rc_context(_RC):
        height = 1.0 + len(models) * max(0.34, 0.24 * len(series)) + (0.45 if len(series) > 1 else 0)
        fig = _figure(9.5, height)
        ax = fig.add_subplot()
        right = 0.0
        banded = False
        for position, entry in enumerate(bars):
            index = series.index(entry.series)
            y = models.index(entry.model) - 0.4 + per_bar * (index + 0.5)
            stats = _stats(entry.values)
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            edge = VERDICT_COLOURS.get(entry.verdict, colour) if entry.verdict in ("REGRESSED", "IMPROVED") else colour
            if entry.band is not None:
                ax.fill_betweenx(
                    [y - per_bar / 2, y + per_bar / 2],
                    entry.band.low,
                    entry.band.high,
                    facecolor=BAND_COLOUR,
                    edgecolor="#424242",
                    alpha=0.45,
                    linewidth=0.8,
                    linestyle="--",
                    zorder=4,
                    label=None if banded else "baseline ± tolerance",
                    gid=f"baseline-band-{position}",
                )
                ax.vlines(entry.band.value, y - per_bar / 2, y + per_bar / 2, colors="#212121", linewidth=1.5, zorder=5)
                right = max(right, entry.band.high)
                banded = True
            whiskers = None
            if stats.count > 1:
                whiskers = [[stats.median - stats.low], [stats.high - stats.median]]
            ax.barh(
                y,
                stats.median,
                height=per_bar * 0.9,
                color=colour,
                edgecolor=edge,
                linewidth=2 if edge != colour else 0,
                xerr=whiskers,
                error_kw={"ecolor": "#212121", "capsize": 3, "elinewidth": 1},
                label=entry.series if entry.series and entry.model == models[0] else None,
            )
            right = max(right, stats.high)
            label = number(stats.median)
            if stats.count > 1:
                label = f"median {label}  (n={stats.count}, {number(stats.low)}–{number(stats.high)})"
            ax.annotate(label, (stats.high, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
            if entry.verdict:
                change = f" {entry.change}%" if entry.change else ""
                ax.annotate(
                    f"{entry.verdict}{change}",
                    (0, y),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=7.5,
                    fontweight="bold",
                    color="white",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": VERDICT_COLOURS.get(entry.verdict, "#616161")},
                )
        ax.set_yticks(range(len(models)), labels=models)
        ax.set_ylim(len(models) - 0.5, -0.5)
        ax.set_xlim(0, (right or 1) * 1.35)
        ax.xaxis.set_major_formatter(_thousands())
        ax.xaxis.grid(True, color="#E0E0E0")
        ax.set_axisbelow(True)
        note = f"  ({direction} is better)" if direction else ""
        ax.set_xlabel(f"{metric}{note}")
        ax.set_title(metric, loc="left")
        if len(series) > 1 or banded:
            fig.legend(
                title=series_title or None,
                loc="outside lower center",
                ncol=min(4, len(series) + banded),
                frameon=False,
                fontsize=8,
            )
    alt = f"{metric}: " + ", ".join(
        f"{entry.model} {entry.series} {number(_stats(entry.values).median)}" for entry in bars
    )
    return Chart(metric, fig, alt)


def trend_chart(
    model: str, metric: str, runs: Sequence[str], lines: Sequence[TrendLine], band: Optional[Band] = None
) -> Chart:
    """Performance of one model and metric over runs (oldest left): the median per run, min-max whiskers."""
    matplotlib = _matplotlib()
    with matplotlib.rc_context(_RC):
        fig = _figure(4.6, 2.6)
        ax = fig.add_subplot()
        if band is not None:
            ax.axhspan(
                band.low,
                band.high,
                color=BAND_COLOUR,
                alpha=0.3,
                linewidth=0,
                label="baseline ± tolerance",
                gid="baseline-band",
            )
            ax.axhline(band.value, color="#424242", linewidth=1)
        for index, line in enumerate(lines):
            points = [(x, _stats(values)) for x, values in enumerate(line.values) if values]
            xs = [x for x, _stats_ in points]
            medians = [s.median for _x, s in points]
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            ax.errorbar(
                xs,
                medians,
                yerr=[[s.median - s.low for _x, s in points], [s.high - s.median for _x, s in points]],
                color=colour,
                marker="o",
                markersize=4,
                capsize=2,
                linewidth=1.5,
                label=line.label or None,
                gid=f"trend-{index}",
            )
            if line.last_verdict in VERDICT_COLOURS and points:
                ax.plot([xs[-1]], [medians[-1]], marker="o", markersize=9, color=VERDICT_COLOURS[line.last_verdict])
        step = max(1, len(runs) // 8)
        ticks = list(range(0, len(runs), step))
        ax.set_xticks(ticks, labels=[_short(runs[i]) for i in ticks], rotation=30, ha="right", fontsize=7)
        ax.set_xlim(-0.5, len(runs) - 0.5)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(_thousands())
        ax.yaxis.grid(True, color="#E0E0E0")
        ax.set_axisbelow(True)
        ax.set_ylabel(metric, fontsize=8)
        ax.set_title(model, loc="left")
        if len(lines) > 1:
            ax.legend(fontsize=7, frameon=False)
    return Chart(f"{model} {metric}", fig, f"{model} {metric} over {len(runs)} runs")


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _pos: number(value))


def _short(run_id: str) -> str:
    return run_id if len(run_id) <= 12 else run_id[:11] + "…"


_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')


def to_svg(chart: Chart, prefix: str) -> str:
    """The chart as an inline <svg> element whose ids start with `prefix` (several charts share one page)."""
    matplotlib = _matplotlib()
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        chart.figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = _METADATA.sub("", text[text.index("<svg") :])
    text = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{_attr(chart.alt)}" ', 1)


def to_png(chart: Chart, dpi: int = 110) -> bytes:
    matplotlib = _matplotlib()
    buffer = io.BytesIO()
    with matplotlib.rc_context(_RC):
        chart.figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _attr(text: str) -> str:
    return html.escape(text[:500], quote=True)
