"""Upcasters: old event versions become the current one before validation.

An upcaster is a small pure function ``dict -> dict`` registered for ``(event_type,
from_version)``; it returns the payload of version ``from_version + 1`` (the chain sets
``schema_version``). :func:`upcast` applies the chain until the payload reaches the current
version. Events are never rewritten in the log: old messages stay old and are upcast on every
read.

Registered upcasters:

``gpu_telemetry`` v0 -> v1
    v0 exporters sent board power in milliwatts as NVML reports it (``power_mw``), utilization as
    a fraction (``gpu_util``, 0-1) and one job id per GPU (``job_id``, a string or null). v1 sends
    ``power_w``, ``gpu_util_pct`` (0-100, as dcgm's ``DCGM_FI_DEV_GPU_UTIL``) and the job ids as
    a dictionary: ``jobs`` (each id once) plus ``job_slot`` (index into ``jobs``, -1 = no job).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from schemas.errors import EventError

__all__ = ["UPCASTERS", "Upcaster", "register_upcaster", "upcast"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

#: (event_type, from_version) -> function producing version from_version + 1.
UPCASTERS: Final[dict[tuple[str, int], Upcaster]] = {}


def register_upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Decorator: register ``fn`` as the upcaster of ``event_type`` from ``from_version``."""

    def decorate(fn: Upcaster) -> Upcaster:
        key = (event_type, from_version)
        if key in UPCASTERS:
            raise ValueError(f"an upcaster for {event_type} v{from_version} is already registered")
        UPCASTERS[key] = fn
        return fn

    return decorate


def upcast(
    raw: Mapping[str, Any],
    current_version: int,
    registry: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
) -> dict[str, Any]:
    """Bring ``raw`` (which has an ``event_type`` string and a ``schema_version`` int) to
    ``current_version`` by chaining upcasters. ``raw`` itself is never modified.

    Raises :class:`EventError` for a version newer than ``current_version``, a missing link in
    the chain, or an upcaster that fails (its exception becomes the reason).
    """
    event_type = str(raw["event_type"])
    version = int(raw["schema_version"])
    if version > current_version:
        raise EventError(
            f"schema_version: {event_type} v{version} is newer than the supported "
            f"v{current_version}"
        )
    out = dict(raw)
    while version < current_version:
        fn = registry.get((event_type, version))
        if fn is None:
            raise EventError(
                f"schema_version: no upcaster from {event_type} v{version} "
                f"(the current version is v{current_version})"
            )
        try:
            out = fn(dict(out))
        except EventError:
            raise
        except Exception as exc:
            raise EventError(
                f"schema_version: upcasting {event_type} v{version} -> v{version + 1} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        version += 1
        out["schema_version"] = version
    return out


def _is_number(x: object) -> bool:
    return type(x) is int or type(x) is float


def _v0_column(raw: dict[str, Any], name: str) -> list[Any]:
    col = raw.pop(name, None)
    if not isinstance(col, list):
        what = "field required" if col is None else "must be a list"
        raise EventError(f"{name}: {what} (gpu_telemetry v0)")
    return col


@register_upcaster("gpu_telemetry", 0)
def _gpu_telemetry_v0_to_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """``power_mw`` -> ``power_w``, ``gpu_util`` (fraction) -> ``gpu_util_pct``, per-GPU
    ``job_id`` -> ``jobs`` + ``job_slot``. Non-numbers pass through for validation to name."""
    power_mw = _v0_column(raw, "power_mw")
    gpu_util = _v0_column(raw, "gpu_util")
    job_id = _v0_column(raw, "job_id")
    raw["power_w"] = [p / 1000 if _is_number(p) else p for p in power_mw]
    raw["gpu_util_pct"] = [u * 100 if _is_number(u) else u for u in gpu_util]
    slots: dict[str, int] = {}
    job_slot: list[int] = []
    for i, job in enumerate(job_id):
        if job is None:
            job_slot.append(-1)
        elif isinstance(job, str):
            job_slot.append(slots.setdefault(job, len(slots)))
        else:
            raise EventError(
                f"job_id[{i}]: must be a job id string or null (gpu_telemetry v0); got {job!r}"
            )
    raw["jobs"] = list(slots)
    raw["job_slot"] = job_slot
    return raw
