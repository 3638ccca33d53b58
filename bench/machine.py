"""Machine and library facts every twin benchmark prints with its figures."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

__all__ = ["machine_lines"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def machine_lines(*packages: str) -> list[str]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    libs = ", ".join(f"{p} {_version(p)}" for p in ("numpy", *packages))
    return [
        f"platform: {platform.platform()}",
        f"cpu: {_cpu_model()} x {os.cpu_count()} logical CPUs",
        f"python: {sys.version.split()[0]}; {libs}",
        f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]
