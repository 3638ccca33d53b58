"""Decode + validate + columnar conversion of ``gpu_telemetry`` messages (the ingest hot path).

Measures, per 64-GPU rack message, the time from raw Kafka value bytes to a validated
``twin.batches.TelemetryBatch``:

- ``baseline``: the naive model, per-element pydantic range constraints, Python loops for the
  cross-field rules, per-message numpy conversion (measured in the same run, for the ratio);
- ``numpy range check in the validator``: element types only in pydantic, every range checked
  by one numpy expression per message (the design first planned for the model);
- ``decode``: ``schemas.decode`` on every message (pydantic ``validate_json`` with the static
  ranges as per-element constraints checked in Rust, the cross-field rules with C builtins),
  then ``schemas.telemetry_batch``;
- ``hot path``: ``schemas.decode_telemetry`` on the batch (orjson, ``struct``, one vectorized
  range check per batch; anything doubtful goes through ``decode``);
- ``orjson.loads`` alone, as the floor any JSON path pays;
- ``binary``: ``schemas.decode_telemetry`` on the same readings in the binary columnar layout
  (:mod:`schemas.binary`), one reading per message, and ``--readings`` (default 10) readings of
  one rack per message; and the reference decoder ``schemas.binary.decode_binary`` (what a
  doubtful binary message costs). Rows give us per message and GPU samples/s; the last column
  is the per-sample speed against the JSON hot path in the same run.

Run: ``.venv/bin/python bench/bench_decode.py [--messages 2000] [--batch 500] [--gpus 64]``.
``--markdown`` prints the table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from schemas import decode, decode_telemetry, telemetry_batch
from schemas.binary import decode_binary, encode_events_binary
from schemas.columnar import assemble_telemetry
from schemas.examples import telemetry_payload
from schemas.telemetry import INT_ROWS, NUMERIC_COLUMNS, RANGES, pack_columns, split_block
from twin.batches import TelemetryBatch
from twin.gpus import GPU_MODELS

# ------------------------------------------------------------------------ the naive baseline


def _f(lo: float, hi: float | None = None) -> Any:
    return Annotated[float, Field(ge=lo, le=hi)]


class NaiveTelemetry(BaseModel):
    """The obvious model: every element constrained by pydantic, cross-field rules in Python."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    event_type: Literal["gpu_telemetry"]
    schema_version: Literal[1]
    ts_ns: int = Field(ge=0)
    source_id: str = Field(min_length=1)
    seq: int = Field(ge=0)
    rack_id: str = Field(min_length=1)
    gpu_model: Literal["A100", "H100", "H200", "B200", "GB200"]
    interval_ns: int = Field(gt=0)
    gpu_index: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(min_length=1)
    gpu_uuid: list[str]
    power_w: list[_f(0)]  # type: ignore[valid-type]
    temp_c: list[_f(-20, 130)]  # type: ignore[valid-type]
    memory_temp_c: list[_f(-20, 150)]  # type: ignore[valid-type]
    sm_clock_mhz: list[_f(0, 5000)]  # type: ignore[valid-type]
    gpu_util_pct: list[_f(0, 100)]  # type: ignore[valid-type]
    sm_active: list[_f(0, 1)]  # type: ignore[valid-type]
    tensor_active: list[_f(0, 1)]  # type: ignore[valid-type]
    dram_active: list[_f(0, 1)]  # type: ignore[valid-type]
    nvlink_bytes: list[_f(0)]  # type: ignore[valid-type]
    xid: list[Annotated[int, Field(ge=0)]]
    job_slot: list[Annotated[int, Field(ge=-1)]]
    jobs: list[str]

    @model_validator(mode="after")
    def _cross_field(self) -> NaiveTelemetry:
        n = len(self.gpu_index)
        for name in _COLUMNS:
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: column length differs")
        limit = 1.5 * GPU_MODELS[self.gpu_model].tdp_w
        for i, p in enumerate(self.power_w):
            if p > limit:
                raise ValueError(f"power_w[{i}] = {p}: above {limit}")
        for i, s in enumerate(self.job_slot):
            if s >= len(self.jobs):
                raise ValueError(f"job_slot[{i}] = {s}: no such job")
        if len(set(self.gpu_index)) != n:
            raise ValueError("gpu_index: not unique")
        return self


_COLUMNS = (
    "gpu_uuid",
    "power_w",
    "temp_c",
    "memory_temp_c",
    "sm_clock_mhz",
    "gpu_util_pct",
    "sm_active",
    "tensor_active",
    "dram_active",
    "nvlink_bytes",
    "xid",
    "job_slot",
)
_F32 = (
    "power_w",
    "temp_c",
    "memory_temp_c",
    "sm_clock_mhz",
    "gpu_util_pct",
    "sm_active",
    "tensor_active",
    "dram_active",
)


def naive_batch(values: Sequence[bytes]) -> TelemetryBatch:
    events = [NaiveTelemetry.model_validate_json(v) for v in values]
    sources: dict[str, int] = {}
    jobs: dict[str, int] = {}
    cols: dict[str, list[np.ndarray[Any, Any]]] = {c: [] for c in (*_F32, "nvlink_bytes", "xid")}
    gpu_index, job_code, counts = [], [], []
    for e in events:
        sources.setdefault(e.source_id, len(sources))
        codes = np.array([jobs.setdefault(j, len(jobs)) for j in e.jobs] + [-1], dtype=np.int32)
        gpu_index.append(np.array(e.gpu_index, dtype=np.int32))
        job_code.append(codes[np.array(e.job_slot)])
        counts.append(len(e.gpu_index))
        for c in _F32:
            cols[c].append(np.array(getattr(e, c), dtype=np.float32))
        cols["nvlink_bytes"].append(np.array(e.nvlink_bytes, dtype=np.float64))
        cols["xid"].append(np.array(e.xid, dtype=np.int32))
    offsets = np.zeros(len(events) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return TelemetryBatch(
        source_ids=tuple(sources),
        source_code=np.array([sources[e.source_id] for e in events], dtype=np.int32),
        seq=np.array([e.seq for e in events], dtype=np.int64),
        ts_ns=np.array([e.ts_ns for e in events], dtype=np.int64),
        interval_ns=np.array([e.interval_ns for e in events], dtype=np.int64),
        row_offsets=offsets,
        gpu_index=np.concatenate(gpu_index),
        job_ids=tuple(jobs),
        job_code=np.concatenate(job_code),
        **{c: np.concatenate(v) for c, v in cols.items()},
    )


# ------------------------------------------- the variant with a numpy check per message

_LO = np.array([RANGES[c].lo for c in NUMERIC_COLUMNS], dtype=np.float64)[:, None]
_HI = np.array([np.inf if RANGES[c].hi is None else RANGES[c].hi for c in NUMERIC_COLUMNS])[:, None]
_P, _S = NUMERIC_COLUMNS.index("power_w"), NUMERIC_COLUMNS.index("job_slot")


class NumpyCheckedTelemetry(BaseModel):
    """Element types only in pydantic; every range in one numpy check per message (the design
    first planned for the model, kept here because it measured slower)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    event_type: Literal["gpu_telemetry"]
    schema_version: Literal[1]
    ts_ns: int = Field(ge=0)
    source_id: str = Field(min_length=1)
    seq: int = Field(ge=0)
    rack_id: str = Field(min_length=1)
    gpu_model: Literal["A100", "H100", "H200", "B200", "GB200"]
    interval_ns: int = Field(gt=0)
    gpu_index: list[int] = Field(min_length=1, max_length=1024)
    gpu_uuid: list[str]
    power_w: list[float]
    temp_c: list[float]
    memory_temp_c: list[float]
    sm_clock_mhz: list[float]
    gpu_util_pct: list[float]
    sm_active: list[float]
    tensor_active: list[float]
    dram_active: list[float]
    nvlink_bytes: list[float]
    xid: list[int]
    job_slot: list[int]
    jobs: list[str]

    @model_validator(mode="after")
    def _check(self) -> NumpyCheckedTelemetry:
        n = len(self.gpu_index)
        cols = tuple(getattr(self, c) for c in NUMERIC_COLUMNS)
        if len(self.gpu_uuid) != n or any(len(c) != n for c in cols):
            raise ValueError("column lengths differ")
        bits = pack_columns(cols, n)
        block = bits.view(np.float64).copy()
        block[list(INT_ROWS)] = bits[list(INT_ROWS)]
        hi = _HI.copy()
        hi[_P, 0] = 1.5 * GPU_MODELS[self.gpu_model].tdp_w
        hi[_S, 0] = len(self.jobs) - 1
        ok = (block >= _LO) & (block <= hi)
        if np.count_nonzero(ok) != ok.size or len(set(self.gpu_index)) != n:
            raise ValueError("out of range")
        self._bits = bits
        return self

    _bits: Any = PrivateAttr(default=None)


def numpy_checked_batch(values: Sequence[bytes]) -> TelemetryBatch:
    events = [NumpyCheckedTelemetry.model_validate_json(v) for v in values]
    floats, ints = split_block(np.concatenate([e._bits for e in events], axis=1))
    return assemble_telemetry(
        source_id=[e.source_id for e in events],
        seq=[e.seq for e in events],
        ts_ns=[e.ts_ns for e in events],
        interval_ns=[e.interval_ns for e in events],
        counts=[len(e.gpu_index) for e in events],
        jobs=[e.jobs for e in events],
        floats=floats,
        ints=ints,
    )


# ------------------------------------------------------------------------------ harness


def _payloads(count: int, gpus: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        telemetry_payload(
            rng,
            n=gpus,
            first_gpu=k * gpus,
            seq=k,
            rack_id=f"c1-h{k % 4 + 1}-r{k:04d}",
            n_jobs=1 + k % 3,
        )
        for k in range(count)
    ]


def _window_messages(count: int, gpus: int, readings: int, seed: int) -> list[bytes]:
    """``count`` binary messages, each ``readings`` consecutive readings of one rack."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        window: list[dict[str, Any]] = []
        for r in range(readings):
            p = telemetry_payload(
                rng,
                n=gpus,
                first_gpu=k * gpus,
                seq=k * readings + r,
                rack_id=f"c1-h{k % 4 + 1}-r{k:04d}",
                n_jobs=1 + k % 3,
            )
            if window:  # one exporter: same UUIDs and jobs in every reading
                p["gpu_uuid"], p["jobs"] = window[0]["gpu_uuid"], window[0]["jobs"]
            window.append(p)
        out.append(encode_events_binary(window))
    return out


def _time(
    run: Callable[[Sequence[bytes]], object], values: list[bytes], batch: int, repeat: int
) -> float:
    """Best-of-``repeat`` seconds per message over all ``values``, in batches of ``batch``."""
    chunks = [values[i : i + batch] for i in range(0, len(values), batch)]
    run(chunks[0])  # warm up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for chunk in chunks:
            run(chunk)
        best = min(best, time.perf_counter() - start)
    return best / len(values)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "platform": platform.platform(),
        "cpu": f"{_cpu_model()} ({os.cpu_count()} logical CPUs)",
        "load average (1/5/15 min)": " / ".join(f"{x:.2f}" for x in load),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pydantic": version("pydantic"),
        "pydantic-core": version("pydantic-core"),
        "orjson": version("orjson"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="distinct messages (2000)")
    parser.add_argument("--batch", type=int, default=500, help="messages per batch (500)")
    parser.add_argument("--gpus", type=int, default=64, help="GPUs per message (64)")
    parser.add_argument(
        "--readings", type=int, default=10, help="readings per binary window message (10)"
    )
    parser.add_argument("--repeat", type=int, default=7, help="repeats; the best counts (7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true", help="print a RESULTS.md table")
    args = parser.parse_args(argv)

    payloads = _payloads(args.messages, args.gpus, args.seed)
    values = [orjson.dumps(p) for p in payloads]
    binary = [encode_events_binary([p]) for p in payloads]
    k = args.readings
    windows = _window_messages(max(1, args.messages // k), args.gpus, k, args.seed + 1)
    mean_bytes = sum(map(len, values)) / len(values)
    bin_bytes = sum(map(len, binary)) / len(binary)
    win_bytes = sum(map(len, windows)) / len(windows)

    # same answer from every path before timing anything
    reference = decode_telemetry(values[: args.batch])
    assert not reference.errors
    for other in (naive_batch(values[: args.batch]), numpy_checked_batch(values[: args.batch])):
        assert np.array_equal(other.power_w, reference.batch.power_w)
        assert np.array_equal(other.job_code, reference.batch.job_code)
    from_binary = decode_telemetry(binary[: args.batch])
    assert not from_binary.errors
    # the binary wire holds float32: the same numbers once the batch has cast them
    assert np.array_equal(from_binary.batch.power_w, reference.batch.power_w)
    assert np.array_equal(from_binary.batch.job_code, reference.batch.job_code)
    assert not decode_telemetry(windows[: max(1, args.batch // k)]).errors

    g = args.gpus
    paths: list[tuple[str, Callable[[Sequence[bytes]], object], list[bytes], int, int]] = [
        ("baseline: per-element pydantic constraints", naive_batch, values, args.batch, g),
        ("numpy range check in the validator", numpy_checked_batch, values, args.batch, g),
        (
            "decode() + telemetry_batch()",
            lambda vs: telemetry_batch([decode(v) for v in vs]),  # type: ignore[misc]
            values,
            args.batch,
            g,
        ),
        ("decode_telemetry() hot path, JSON", decode_telemetry, values, args.batch, g),
        (
            "orjson.loads alone (floor, no validation)",
            lambda vs: [orjson.loads(v) for v in vs],
            values,
            args.batch,
            g,
        ),
        ("decode_telemetry(), binary, 1 reading/message", decode_telemetry, binary, args.batch, g),
        (
            f"decode_telemetry(), binary, {k} readings/message",
            decode_telemetry,
            windows,
            max(1, args.batch // k),
            g * k,
        ),
        (
            "decode_binary() reference, 1 reading/message",
            lambda vs: [decode_binary(v) for v in vs],
            binary,
            args.batch,
            g,
        ),
    ]
    gc.collect()
    results = [
        (name, _time(run, vals, batch, args.repeat), samples)
        for name, run, vals, batch, samples in paths
    ]
    base = results[0][1] / results[0][2]  # seconds per sample
    hot = results[3][1] / results[3][2]

    info = machine()
    print(f"decode + validate + columnar, {args.gpus}-GPU gpu_telemetry messages")
    print(
        f"{args.messages} distinct messages: JSON {mean_bytes:,.0f} bytes, binary "
        f"{bin_bytes:,.0f} bytes; {len(windows)} binary messages of {k} readings, "
        f"{win_bytes:,.0f} bytes; batches of {args.batch} readings"
    )
    print(f"best of {args.repeat} runs; ratios per GPU sample")
    for key, value in info.items():
        print(f"  {key}: {value}")
    rows = []
    for name, seconds, samples in results:
        per = seconds / samples
        rows.append(
            (
                name,
                f"{seconds * 1e6:.1f}",
                f"{1 / seconds:,.0f}",
                f"{1 / per:,.0f}",
                f"{base / per:.2f}x",
                f"{hot / per:.2f}x",
            )
        )
    header = (
        "path",
        "us/message",
        "messages/s",
        "GPU samples/s",
        "vs baseline",
        "vs JSON hot path",
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    if args.markdown:
        print()
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
