"""What the figures were measured on: CPU, cores, kernel, Python, load and CPU steal."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@dataclass
class CpuTimes:
    """Totals of the ``cpu`` line of /proc/stat, in ticks."""

    total: int
    idle: int
    steal: int

    @classmethod
    def now(cls) -> CpuTimes | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        values = [int(v) for v in fields]
        steal = values[7] if len(values) > 7 else 0
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        # guest time is already counted in user time
        return cls(total=sum(values[:8]), idle=idle, steal=steal)


def usage_since(start: CpuTimes | None) -> str:
    end = CpuTimes.now()
    if start is None or end is None or end.total <= start.total:
        return "n/a"
    span = end.total - start.total
    busy = 100 * (span - (end.idle - start.idle)) / span
    steal = 100 * (end.steal - start.steal) / span
    return f"busy {busy:.0f}%, steal {steal:.1f}%"


def describe(started: CpuTimes | None = None) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    rows = [
        ("CPU", cpu_model()),
        ("cores", str(os.cpu_count())),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("Python", sys.version.split()[0]),
        ("load average (1, 5, 15 min)", load),
    ]
    if started is not None:
        rows.append(("CPU over the run (all cores)", usage_since(started)))
    lines = ["| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)
