"""The sign-up chart: daily sign-ups as bars, the running total as a line, as a PNG.

matplotlib is imported on first use (it takes a moment to load) and drawn with its Agg canvas
on a private Figure, without pyplot's global state; callers run `render_signups` in a worker
thread. Dates and numbers are formatted by Babel in the reader's language.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import accumulate

from babel.dates import format_skeleton
from babel.numbers import format_decimal

_lock = threading.Lock()  # matplotlib is not safe for concurrent drawing


@dataclass(frozen=True, slots=True)
class ChartLabels:
    title: str
    daily: str
    total: str


def render_signups(per_day: Sequence[tuple[date, int]], labels: ChartLabels, lang: str) -> bytes:
    """PNG bytes of the chart; `per_day` must hold at least one day."""
    if not per_day:
        raise ValueError("no days to draw")
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    days = [d for d, _ in per_day]
    daily = [n for _, n in per_day]
    total = list(accumulate(daily))

    def day_label(value: float, _pos: int) -> str:
        return format_skeleton("MMMd", mdates.num2date(value).date(), locale=lang)

    def number(value: float, _pos: int) -> str:
        return format_decimal(value, format="#,##0", locale=lang)

    with _lock:
        figure = Figure(figsize=(8, 4.5), dpi=120, layout="constrained")
        FigureCanvasAgg(figure)
        bars = figure.add_subplot()
        line = bars.twinx()
        bars.bar(days, daily, color="#9ec5e8", label=labels.daily, width=0.8)
        marker = "o" if len(days) <= 31 else None
        line.plot(days, total, color="#1f4e79", linewidth=2, label=labels.total, marker=marker)
        bars.set_ylim(0, max(daily) * 1.15 + 1)
        line.set_ylim(0, total[-1] * 1.1 + 1)
        for axis in (bars, line):
            axis.yaxis.set_major_locator(MaxNLocator(integer=True))
            axis.yaxis.set_major_formatter(FuncFormatter(number))
        # At most about eight dates under the axis, always whole days.
        bars.set_xticks(days[:: -(-len(days) // 8)])
        bars.xaxis.set_major_formatter(FuncFormatter(day_label))
        bars.set_xlim(mdates.date2num(days[0]) - 0.6, mdates.date2num(days[-1]) + 0.6)
        bars.set_ylabel(labels.daily)
        line.set_ylabel(labels.total)
        bars.set_title(labels.title)
        bars.grid(axis="y", alpha=0.3)
        handles = bars.get_legend_handles_labels()[0] + line.get_legend_handles_labels()[0]
        bars.legend(handles=handles, loc="upper left", framealpha=0.9)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()
