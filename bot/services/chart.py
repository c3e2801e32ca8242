"""The sign-up chart: daily sign-ups as bars, the running total as a line, as a PNG.

The bot calls `draw_signups`, which draws in a short-lived child process
(``python -m bot.services.chart``: the figures as JSON on stdin, the PNG on stdout). matplotlib
holds some 55 MB once it has drawn, which a long-running bot would keep for good, and its
drawing would compete with the handlers for the GIL; the child gives it all back when it exits.
`render_signups` draws in the calling process, with matplotlib's Agg canvas on a private
Figure, without pyplot's global state. Dates and numbers are formatted by Babel in the reader's
language.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from itertools import accumulate
from pathlib import Path

from babel.dates import format_skeleton

from bot.i18n import format_number

_lock = threading.Lock()  # matplotlib is not safe for concurrent drawing
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_TIMEOUT = 60.0  # seconds for the child process to start, draw and exit
# The child program; tests swap it for one that fails.
CHART_COMMAND: tuple[str, ...] = (sys.executable, "-m", "bot.services.chart")
_ROOT = Path(__file__).resolve().parents[2]  # where the `bot` package is, for the child


class ChartError(Exception):
    """The chart process failed, or did not answer in time."""


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
        return format_number(round(value), lang)

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


def chart_request(per_day: Sequence[tuple[date, int]], labels: ChartLabels, lang: str) -> bytes:
    """What the child reads on stdin."""
    if not per_day:
        raise ValueError("no days to draw")
    days = [[d.isoformat(), n] for d, n in per_day]
    return json.dumps({"per_day": days, "labels": asdict(labels), "lang": lang}).encode()


async def draw_signups(
    per_day: Sequence[tuple[date, int]],
    labels: ChartLabels,
    lang: str,
    timeout: float = CHART_TIMEOUT,
) -> bytes:
    """PNG bytes of the chart, drawn by a child process; ChartError if it fails.

    Only the awaiting task waits: the event loop stays free for other updates meanwhile.
    """
    request = chart_request(per_day, labels, lang)
    path = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH")) if p)
    try:
        process = await asyncio.create_subprocess_exec(
            *CHART_COMMAND,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
    except OSError as exc:
        raise ChartError(f"the chart process did not start: {exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            png, errors = await process.communicate(request)
    except TimeoutError:
        raise ChartError(f"no chart after {timeout:g} s") from None
    finally:
        if process.returncode is None:  # timed out or cancelled: stop the child, reap it
            process.kill()
            await process.communicate()
    if process.returncode != 0 or not png.startswith(PNG_SIGNATURE):
        tail = errors.decode(errors="replace").strip().splitlines()[-5:]
        raise ChartError(
            f"the chart process exited with {process.returncode}: " + " | ".join(tail)
        )
    return png


def main() -> None:
    """The child: JSON on stdin, PNG on stdout."""
    request = json.load(sys.stdin.buffer)
    per_day = [(date.fromisoformat(day), int(n)) for day, n in request["per_day"]]
    png = render_signups(per_day, ChartLabels(**request["labels"]), request["lang"])
    sys.stdout.buffer.write(png)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
