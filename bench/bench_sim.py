"""Simulator throughput: the full 220,000-GPU facility (colossus1-mixed) generated to a file.

Target (DESIGN.md, issue 3): >= 10x real time, i.e. >= 2.2 million GPU samples/s, written to an
event-log file. Measured, after one warm-up interval (which also emits every rack_installed):

- ``to file``: ``simulate``-equivalent loop, every record into an :class:`EventLogWriter`;
- ``physics + truth``: the same simulator with emission off (what ``--summary`` pays);
- ``telemetry encoding`` of one interval's 3,406 rack messages three ways, on the same columns:
  the fixed-width table encoder the simulator uses; ``orjson.dumps(OPT_SERIALIZE_NUMPY)`` of
  per-rack numpy slices; ``json.dumps`` of per-rack lists (the baseline, for the ratio).

Run: ``.venv/bin/python bench/bench_sim.py [--seconds 10] [--runs 3] [--kafka 5]``;
``--kafka N`` also produces N simulated seconds to Kafka (``TWIN_KAFKA_BOOTSTRAP``, else a local
broker started and stopped here); ``--append`` adds the figures to bench/RESULTS.md under
"## Simulator".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from sim.engine import Simulator
from sim.eventlog import EventLogWriter
from sim.scenario import load_scenario
from sim.telemetry import RackTelemetryEncoder

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADING = "## Simulator"


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": f"{cpu} ({os.cpu_count()} logical CPUs)",
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "orjson": version("orjson"),
    }


def bench_file(scenario_name: str, seconds: int, folder: Path, runs: int) -> dict[str, float]:
    """``runs`` timed stretches of ``seconds`` intervals each, one simulator and one file;
    the figures of the median and the best stretch (the machine is shared: others' load only
    ever slows a stretch down)."""
    sim = Simulator(load_scenario(scenario_name))
    path = folder / "bench.twinlog"
    walls: list[tuple[float, int, int]] = []
    with EventLogWriter(path) as writer:
        writer.write(sim.step())  # warm-up: rack_installed, leases, job starts
        for _ in range(runs):
            start_bytes, start_records = writer.bytes, writer.records
            t0 = time.perf_counter()
            for _ in range(seconds):
                writer.write(sim.step())
            walls.append(
                (
                    time.perf_counter() - t0,
                    writer.bytes - start_bytes,
                    writer.records - start_records,
                )
            )
    path.unlink()
    walls.sort()
    best, median = walls[0], walls[len(walls) // 2]
    samples = sim.topo.n_gpus * seconds
    return {
        "gpus": sim.topo.n_gpus,
        "racks": sim.topo.n_racks,
        "seconds": seconds,
        "runs": runs,
        "gpu_samples_per_s": samples / median[0],
        "best_gpu_samples_per_s": samples / best[0],
        "x_real_time": seconds / median[0],
        "best_x_real_time": seconds / best[0],
        "mb_per_s": median[1] / 1e6 / median[0],
        "records_per_s": median[2] / median[0],
        "bytes_per_sim_s": median[1] / seconds,
    }


def bench_physics(scenario_name: str, seconds: int) -> float:
    sim = Simulator(load_scenario(scenario_name), emit=False)
    sim.step()
    t0 = time.perf_counter()
    for _ in range(seconds):
        sim.step()
    return (time.perf_counter() - t0) / seconds


def _time(fn: Any, repeat: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def bench_encoding(scenario_name: str, repeat: int) -> dict[str, float]:
    """Seconds per interval to encode all racks' telemetry, three ways, same column values."""
    sim = Simulator(load_scenario(scenario_name))
    sim.step()
    sim.step()
    assert sim.out is not None
    enc: RackTelemetryEncoder = sim.out.enc
    bounds = [
        (int(a), int(b))
        for a, b in zip(sim.topo.rack_offsets[:-1], sim.topo.rack_offsets[1:], strict=True)
    ]
    c = enc.columns
    f32 = {
        k: np.round(c[k], 4).astype(np.float32)
        for k in ("sm_active", "tensor_active", "dram_active")
    }
    f32["power_w"] = c["power_w"].astype(np.float32)
    i64 = {
        k: np.rint(c[k]).astype(np.int64)
        for k in ("temp_c", "memory_temp_c", "sm_clock_mhz", "gpu_util_pct", "nvlink_bytes")
    }
    i64["job_slot"] = enc.job_slot.astype(np.int64)
    i64["xid"] = enc.xid.astype(np.int64)
    cols: dict[str, Any] = {**f32, **i64}
    uuids = [[bytes(u).decode() for u in sim.topo.gpu_uuid[lo:hi]] for lo, hi in bounds]

    def envelope(r: int) -> dict[str, Any]:
        lo, hi = bounds[r]
        return {
            "event_type": "gpu_telemetry",
            "schema_version": 1,
            "ts_ns": 1,
            "seq": 1,
            "source_id": "x",
            "rack_id": sim.topo.rack_ids[r],
            "gpu_model": "H100",
            "interval_ns": 10**9,
            "gpu_index": list(range(lo, hi)),
            "gpu_uuid": uuids[r],
            "jobs": ["j"],
        }

    heads = [envelope(r) for r in range(len(bounds))]

    def with_json() -> None:
        for r, (lo, hi) in enumerate(bounds):
            doc = dict(heads[r])
            doc.update({k: v[lo:hi].tolist() for k, v in cols.items()})
            json.dumps(doc, separators=(",", ":")).encode()

    def with_orjson() -> None:
        for r, (lo, hi) in enumerate(bounds):
            doc = dict(heads[r])
            doc.update({k: v[lo:hi] for k, v in cols.items()})
            orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)

    return {
        "fixed_width_s": _time(lambda: enc.encode(1, 1), repeat * 3),
        "orjson_s": _time(with_orjson, repeat),
        "json_s": _time(with_json, max(1, repeat // 2)),
    }


def bench_kafka(scenario_name: str, seconds: int) -> dict[str, float]:
    """Produce ``seconds`` of the scenario with :class:`KafkaSink`: to ``TWIN_KAFKA_BOOTSTRAP``
    if set, else to a local broker started here (free ports, temporary folder) and stopped."""
    from sim.producer import KafkaSink  # noqa: PLC0415
    from sim.run import simulate  # noqa: PLC0415
    from streams.broker import start_broker, stop_broker  # noqa: PLC0415 - only with --kafka
    from streams.settings import Settings, load_settings  # noqa: PLC0415
    from streams.topics import ensure_topics  # noqa: PLC0415

    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        own = settings.kafka_bootstrap is None
        if own:
            import socket  # noqa: PLC0415

            ports = []
            for _ in range(2):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    ports.append(sock.getsockname()[1])
            settings = Settings(
                data_dir=Path(tmp), broker_port=ports[0], broker_controller_port=ports[1]
            )
            start_broker(settings)
        try:
            ensure_topics(settings)
            with KafkaSink(settings.kafka_python_kwargs()) as sink:
                t0 = time.perf_counter()
                result = simulate(load_scenario(scenario_name), seconds, sink=sink)
                wall = time.perf_counter() - t0
        finally:
            if own:
                stop_broker(settings)
    st = result.stats
    return {
        "seconds": seconds,
        "x_real_time": seconds / wall,
        "gpu_samples_per_s": st.gpu_samples / wall,
        "records_per_s": st.records / wall,
        "mb_per_s": st.bytes / 1e6 / wall,
        "local": float(own),
    }


def markdown(
    m: dict[str, str],
    f: dict[str, float],
    physics_s: float,
    e: dict[str, float],
    *,
    scenario: str,
    k: dict[str, float] | None = None,
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    target = "median meets" if f["gpu_samples_per_s"] >= 2.2e6 else "median MISSES"
    lines = [
        f"### {when}: {scenario}, {f['gpus']:,.0f} GPUs in {f['racks']:,.0f} racks, "
        f"{f['runs']:.0f} x {f['seconds']:.0f} s of event time to an event-log file "
        "(median stretch; best in brackets)",
        "",
        f"Machine: {m['cpu']}; {m['platform']}; Python {m['python']}, numpy {m['numpy']}, "
        f"orjson {m['orjson']}; load average at the start {m['load average']} "
        "(the machine is shared).",
        "",
        "| measure | figure |",
        "|---|---|",
        f"| GPU samples/s to file | {f['gpu_samples_per_s'] / 1e6:.2f} M "
        f"({f['best_gpu_samples_per_s'] / 1e6:.2f} M); {target} the 2.2 M target |",
        f"| x real time | {f['x_real_time']:.1f}x ({f['best_x_real_time']:.1f}x) |",
        f"| write rate | {f['mb_per_s']:.0f} MB/s, {f['records_per_s']:,.0f} records/s, "
        f"{f['bytes_per_sim_s'] / 1e6:.1f} MB per simulated second |",
        f"| physics + truth only (no events), per simulated second | {physics_s * 1e3:.1f} ms |",
        f"| telemetry encoding per simulated second: fixed-width tables (used) | "
        f"{e['fixed_width_s'] * 1e3:.1f} ms |",
        f"| same, orjson OPT_SERIALIZE_NUMPY per rack | {e['orjson_s'] * 1e3:.1f} ms "
        f"({e['orjson_s'] / e['fixed_width_s']:.1f}x slower) |",
        f"| same, json.dumps of lists (baseline) | {e['json_s'] * 1e3:.0f} ms "
        f"({e['json_s'] / e['fixed_width_s']:.0f}x slower) |",
    ]
    if k is not None:
        where = "a local broker on the same machine" if k["local"] else "the configured cluster"
        lines.append(
            f"| produced to Kafka ({where}, kafka-python, {k['seconds']:.0f} s) | "
            f"{k['x_real_time']:.2f}x real time, {k['gpu_samples_per_s'] / 1e6:.2f} M GPU "
            f"samples/s, {k['records_per_s']:,.0f} records/s, {k['mb_per_s']:.0f} MB/s |"
        )
    lines.append("")
    return "\n".join(lines)


def append_results(entry: str) -> None:
    """Add ``entry`` at the end of the "## Simulator" section (created if missing)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if HEADING not in text:
        text = (
            text.rstrip("\n") + f"\n\n{HEADING}\n\nProduced by `bench/bench_sim.py --append`."
            "\n\n" + entry
        )
    else:
        start = text.index(HEADING) + len(HEADING)
        nxt = text.find("\n## ", start)
        end = len(text) if nxt < 0 else nxt + 1
        section = text[:end].rstrip("\n") + "\n\n" + entry
        text = section + ("\n" + text[end:] if nxt >= 0 else "")
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="colossus1-mixed")
    parser.add_argument("--seconds", type=int, default=10, help="simulated seconds per run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median and best)")
    parser.add_argument("--repeat", type=int, default=4, help="encoding repetitions")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the temporary file")
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument(
        "--kafka",
        type=int,
        default=0,
        metavar="SECONDS",
        help="also produce this many simulated seconds to Kafka",
    )
    args = parser.parse_args()
    m = machine()
    for k, v in m.items():
        print(f"{k:>14}: {v}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        f = bench_file(args.scenario, args.seconds, Path(tmp), args.runs)
    print(
        f"to file: {f['gpu_samples_per_s'] / 1e6:.2f} M GPU samples/s (best "
        f"{f['best_gpu_samples_per_s'] / 1e6:.2f} M), {f['x_real_time']:.1f}x real time, "
        f"{f['mb_per_s']:.0f} MB/s"
    )
    physics = bench_physics(args.scenario, max(5, args.seconds // 2))
    print(f"physics + truth: {physics * 1e3:.1f} ms per simulated second")
    e = bench_encoding(args.scenario, args.repeat)
    print(
        f"encoding per simulated second: fixed-width {e['fixed_width_s'] * 1e3:.1f} ms, "
        f"orjson {e['orjson_s'] * 1e3:.1f} ms, json.dumps {e['json_s'] * 1e3:.0f} ms "
        f"(baseline ratio {e['json_s'] / e['fixed_width_s']:.0f}x)"
    )
    k = bench_kafka(args.scenario, args.kafka) if args.kafka > 0 else None
    if k is not None:
        print(f"to Kafka: {k['x_real_time']:.2f}x real time, {k['mb_per_s']:.0f} MB/s")
    entry = markdown(m, f, physics, e, scenario=args.scenario, k=k)
    print()
    print(entry)
    if args.append:
        append_results(entry)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
