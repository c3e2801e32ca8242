"""The benchmark scripts still start and finish a tiny configuration (figures not checked).

Each script is run as `python -m bench.<name>` exactly as documented, all at once to keep
this quick; only the exit code and the presence of the headline figures are asserted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from tests.conftest import ROOT

RUNS: dict[str, tuple[list[str], list[str]]] = {
    "throughput": (
        ["--users", "3", "--rate", "40", "--bots", "unthrottled,echo,echo-aiohttp"],
        ["updates/s", "reply latency", "/ echo bot (sequential) =", "on the same transport ="],
    ),
    "burst": (
        ["--users", "5"],
        ["-- typed", "registrations completed per second", "requests per registration: 10.00"],
    ),
    "fanout": (
        ["--registrants", "20", "--chatters", "1", "--reminder-in", "1"],
        ["bulk messages delivered: 40 of 40", "messages/s", "interactive reply latency"],
    ),
    "scale": (
        ["--registrations", "300", "--repeat", "1"],
        ["start-up to the first handled update", "/stats", "/export", "RSS"],
    ),
    "edit_notice": (
        ["--registrants", "10", "--chatters", "1"],
        ["bulk messages delivered: 20 of 20", "Confirm to the last calendar file", "429"],
    ),
    "flood": (
        ["--flood", "30", "--others", "3", "--rounds", "1"],
        ["others' reply latency", "messages the flooder got back per round"],
    ),
    "crash_drill": (
        [
            *("--kills", "2", "--recipients", "20", "--arrival", "0.5"),
            *("--flood-recipients", "12", "--flood-kills", "1", "--flood-rate", "6"),
        ],
        ["kills: 2", "registrations in the database", "recipients by copies received", "missed"],
    ),
}


async def run(name: str, args: list[str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"bench.{name}",
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its bot processes too can be stopped as a group
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return -1, f"bench.{name} did not finish within 240 s"
    return process.returncode or 0, output.decode(errors="replace")


async def test_every_benchmark_runs_a_tiny_configuration():
    results = await asyncio.gather(*(run(name, args) for name, (args, _) in RUNS.items()))
    for (name, (_, expected)), (code, output) in zip(RUNS.items(), results, strict=True):
        assert code == 0, f"bench.{name} exited with {code}:\n{output}"
        for line in expected:
            assert line in output, f"bench.{name}: {line!r} missing from:\n{output}"
