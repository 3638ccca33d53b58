"""Load, merge and validate scenario files into a frozen :class:`~sim.config.Scenario`.

A scenario file is TOML. It is merged onto ``sim/scenarios/_defaults.toml`` (tables merge key by
key; arrays of tables such as ``[[job]]`` replace), each ``[[job]]`` is merged onto the defaults'
``[job_defaults]``, and the result is checked against the dataclasses of :mod:`sim.config`:
unknown keys, missing keys, wrong types, values out of range and broken cross references all
raise :class:`ScenarioError` with a message naming the key (``job[2].gpus: must be >= 1, got 0``).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from sim.config import Rule, Scenario
from sim.timefmt import parse_duration_s, parse_instant_ns
from twin.gpus import GPU_MODELS

__all__ = [
    "SCENARIO_DIR",
    "ScenarioError",
    "deep_merge",
    "list_scenarios",
    "load_scenario",
    "scenario_from_dict",
    "scenario_path",
]

SCENARIO_DIR: Final = Path(__file__).resolve().parent / "scenarios"
_DEFAULTS: Final = SCENARIO_DIR / "_defaults.toml"


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or invalid; the message names the key."""


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios (files in ``sim/scenarios/`` not starting with ``_``)."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml") if not p.name.startswith("_"))


def scenario_path(name_or_path: str | Path) -> Path:
    """A shipped scenario's file by name, or the given path if it is a file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ScenarioError(f"scenario file {str(p)!r} does not exist")
        return p
    shipped = SCENARIO_DIR / f"{name_or_path}.toml"
    if not shipped.is_file() or str(name_or_path).startswith("_"):
        known = ", ".join(list_scenarios())
        raise ScenarioError(f"unknown scenario {str(name_or_path)!r}: known scenarios are {known}")
    return shipped


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: tables merge recursively, everything else (arrays too) replaces."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None


def load_scenario(
    name_or_path: str | Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
) -> Scenario:
    """Load a shipped scenario by name or a TOML file by path, apply ``overrides`` and ``seed``."""
    path = scenario_path(name_or_path)
    data = _read_toml(path)
    if overrides:
        data = deep_merge(data, overrides)
    if seed is not None:
        data = deep_merge(data, {"scenario": {"seed": seed}})
    try:
        return scenario_from_dict(data)
    except ScenarioError as exc:
        raise ScenarioError(f"{path.name}: {exc}") from None


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """Validate a scenario given as nested dicts (already parsed TOML), merged onto the defaults."""
    defaults = _read_toml(_DEFAULTS)
    job_defaults = defaults.pop("job_defaults", {})
    merged = deep_merge(defaults, data)
    merged.pop("job_defaults", None)
    jobs = merged.get("job", [])
    if isinstance(jobs, list):
        merged["job"] = [deep_merge(job_defaults, j) if isinstance(j, Mapping) else j for j in jobs]
    scenario = _convert(Scenario, merged, "")
    assert isinstance(scenario, Scenario)
    _check_references(scenario)
    return scenario


# -- generic conversion ------------------------------------------------------------------------


def _where(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _convert(tp: Any, value: Any, path: str, rule: Rule | None = None) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _convert_dataclass(tp, value, path)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(args[0], value, path, rule)
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ScenarioError(f"{path}: expected a list, got {_show(value)}")
        return tuple(_convert(item_tp, v, _where(path, i), rule) for i, v in enumerate(value))
    if origin is dict:
        _, val_tp = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ScenarioError(f"{path}: expected a table, got {_show(value)}")
        return {str(k): _convert(val_tp, v, _where(path, str(k)), rule) for k, v in value.items()}
    return _convert_scalar(tp, value, path, rule)


def _convert_dataclass(cls: type[Any], value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{path or 'scenario'}: expected a table, got {_show(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in value if k not in fields]
    if unknown:
        known = ", ".join(fields)
        raise ScenarioError(
            f"{_where(path, unknown[0])}: unknown key {unknown[0]!r} (known keys: {known})"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        where = _where(path, name)
        if name not in value:
            no_default = (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            )
            if no_default:
                raise ScenarioError(f"{where}: missing (required key)")
            continue
        kwargs[name] = _convert(hints[name], value[name], where, f.metadata.get("rule"))
    return cls(**kwargs)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert_scalar(tp: Any, value: Any, path: str, rule: Rule | None) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{path}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{path}: expected an integer, got {_show(value)}")
        _check_range(float(value), path, rule)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(f"{path}: expected a number, got {_show(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise ScenarioError(f"{path}: must be a finite number, got {_show(value)}")
        _check_range(number, path, rule)
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ScenarioError(f"{path}: expected a string, got {_show(value)}")
        _check_text(value, path, rule)
        return value
    raise TypeError(f"{path}: unsupported field type {tp!r}")  # a bug in sim.config


def _check_range(number: float, path: str, rule: Rule | None) -> None:
    if rule is None:
        return
    if rule.lo is not None:
        if rule.lo_open and not number > rule.lo:
            raise ScenarioError(f"{path}: must be > {rule.lo:g}, got {number:g}")
        if not rule.lo_open and not number >= rule.lo:
            raise ScenarioError(f"{path}: must be >= {rule.lo:g}, got {number:g}")
    if rule.hi is not None and not number <= rule.hi:
        raise ScenarioError(f"{path}: must be <= {rule.hi:g}, got {number:g}")


def _check_text(text: str, path: str, rule: Rule | None) -> None:
    if rule is None:
        return
    if rule.choices and text not in rule.choices:
        allowed = ", ".join(repr(c) for c in rule.choices)
        raise ScenarioError(f"{path}: must be one of {allowed}, got {text!r}")
    try:
        if rule.duration and text:
            parse_duration_s(text)
        if rule.instant:
            parse_instant_ns(text)
    except ValueError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


# -- cross references --------------------------------------------------------------------------


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ScenarioError(message)


def _check_references(s: Scenario) -> None:
    for name in s.generation:
        _require(
            name in GPU_MODELS,
            f"generation.{name}: unknown GPU model {name!r} (known: {', '.join(GPU_MODELS)})",
        )
    t = s.telemetry
    base = t.gpu_interval_s
    for key in ("power_interval_s", "cooling_interval_s", "plant_interval_s", "truth_tick_s"):
        ratio = getattr(t, key) / base
        _require(
            abs(ratio - round(ratio)) < 1e-9 and round(ratio) >= 1,
            f"telemetry.{key}: must be a whole multiple of telemetry.gpu_interval_s ({base:g})",
        )
    _require(
        t.readings_per_message == 1 or t.format == "binary",
        "telemetry.readings_per_message: must be 1 with format 'json' (a JSON gpu_telemetry "
        "message carries one reading); use format = 'binary'",
    )
    _require(len(s.campus) > 0, "campus: at least one [[campus]] is required")
    campus_ids = [c.id for c in s.campus]
    _unique(campus_ids, "campus", "id")
    hall_ids = []
    for i, c in enumerate(s.campus):
        _require(len(c.hall) > 0, f"campus[{i}].hall: at least one [[campus.hall]] is required")
        for j, h in enumerate(c.hall):
            hall_ids.append(h.id)
            _require(
                h.gpu_model in s.generation,
                f"campus[{i}].hall[{j}].gpu_model: {h.gpu_model!r} has no "
                f"[generation.{h.gpu_model}] table (known: {', '.join(s.generation)})",
            )
            per_node = s.generation[h.gpu_model].gpus_per_node
            _require(
                h.gpus % per_node == 0,
                f"campus[{i}].hall[{j}].gpus: {h.gpus} is not a whole number of "
                f"{h.gpu_model} nodes ({per_node} GPUs each)",
            )
    _unique(hall_ids, "campus.hall", "id")
    _unique([lk.id for lk in s.link], "link", "id")
    for i, lk in enumerate(s.link):
        for key in ("campus_a", "campus_b"):
            _require(
                getattr(lk, key) in campus_ids,
                f"link[{i}].{key}: unknown campus {getattr(lk, key)!r} "
                f"(known: {', '.join(campus_ids)})",
            )
        _require(lk.campus_a != lk.campus_b, f"link[{i}]: campus_a and campus_b must differ")
    _unique([j.id for j in s.job], "job", "id")
    for i, job in enumerate(s.job):
        for m in job.models:
            _require(m in s.generation, f"job[{i}].models: unknown GPU model {m!r}")
        _require(
            not job.campus or job.campus in campus_ids,
            f"job[{i}].campus: unknown campus {job.campus!r} (known: {', '.join(campus_ids)})",
        )
        mp = job.tensor * job.pipeline
        _require(mp <= job.gpus, f"job[{i}]: tensor x pipeline ({mp}) exceeds gpus ({job.gpus})")
    _unique([le.id for le in s.lease], "lease", "id")
    for i, le in enumerate(s.lease):
        for m, n in le.gpus.items():
            _require(m in s.generation, f"lease[{i}].gpus: unknown GPU model {m!r}")
            _require(isinstance(n, int) and n > 0, f"lease[{i}].gpus.{m}: must be > 0")
        _require(
            parse_instant_ns(le.end) > parse_instant_ns(le.start),
            f"lease[{i}].end: must be after lease[{i}].start",
        )
        _require(
            not le.campus or le.campus in campus_ids,
            f"lease[{i}].campus: unknown campus {le.campus!r}",
        )
    for w in s.failures.xid_weights:
        _require(w.isdigit(), f'failures.xid_weights.{w}: key must be an XID number, e.g. "79"')


def _unique(ids: list[str], section: str, key: str) -> None:
    seen: set[str] = set()
    for i, x in enumerate(ids):
        _require(bool(x), f"{section}[{i}].{key}: must not be empty")
        _require(x not in seen, f"{section}[{i}].{key}: duplicate id {x!r}")
        seen.add(x)
