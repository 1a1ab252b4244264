"""The machine a benchmark ran on, described the same way in every report."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` where there is one, else what Python knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), which can be fewer than the machine has."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def describe() -> str:
    """``"x86_64, 2 cores (Intel(R) Xeon(R) Processor)"``."""
    return f"{platform.machine()}, {usable_cores()} cores ({cpu_model()})"
