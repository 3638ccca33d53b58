"""``twin`` is the pure core: it imports no Kafka, Faust or DuckDB and never touches files.

A fresh interpreter blocks those packages with an import hook and every file-opening function,
imports every ``twin`` module, folds events, closes a tick, checksums and runs the calculator.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import builtins, importlib, io, os, pkgutil, sys
    from importlib.abc import MetaPathFinder

    BLOCKED = ("faust", "kafka", "aiokafka", "duckdb", "mode", "pyarrow")

    class Block(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"twin must not import {name}")
            return None

    sys.meta_path.insert(0, Block())
    import twin
    names = [m.name for m in pkgutil.walk_packages(twin.__path__, "twin.")]
    for name in names:
        importlib.import_module(name)

    def no_files(*args, **kwargs):
        raise AssertionError(f"twin touched the filesystem: {args!r}")

    builtins.open = io.open = os.open = no_files
    os.stat = os.listdir = os.scandir = os.remove = os.mkdir = no_files

    import numpy as np
    from twin import TwinState, close_tick, fold_events, state_checksum
    from twin import synthetic as syn
    from twin.mfu import FleetPart, mfu_report

    layout = syn.facility([("H100", 128, 64), ("GB200", 72, 72)])
    state = TwinState()
    events, job_of = syn.start_jobs(layout, 2, ts_ns=10**12)
    rng = np.random.default_rng(0)
    log = [list(layout.events), events]
    log += [syn.telemetry(layout, 10**12 + k * 10**9, k, rng=rng, job_of_gpu=job_of)
            for k in range(12)]
    results = fold_events(state, log)
    results.append(close_tick(state))
    assert results and state_checksum(state)
    mfu_report(fleet=[FleetPart(8, "H100")], tokens_per_s=1e3, flops_per_token=1e9)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("pure", len(names))
    """
)


def test_twin_imports_no_shell_packages_and_touches_no_files() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pure")
