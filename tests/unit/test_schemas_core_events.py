"""Low-volume events -> twin.batches dataclasses."""

from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest

from schemas import EVENT_MODELS, decode
from schemas.core_events import to_core, to_core_events
from schemas.examples import example_payloads
from twin import batches

EXAMPLES = example_payloads()
LOW_VOLUME = sorted(set(EVENT_MODELS) - {"gpu_telemetry"})


@pytest.mark.parametrize("event_type", LOW_VOLUME)
def test_every_field_arrives(event_type: str) -> None:
    payload = EXAMPLES[event_type]
    core = to_core(decode(orjson.dumps(payload)))
    fields = {f.name for f in dataclasses.fields(core)}  # type: ignore[arg-type]
    assert fields == set(payload) - {"event_type", "schema_version"}
    for name in fields:
        value, expected = getattr(core, name), payload[name]
        if isinstance(value, np.ndarray):
            assert value.tolist() == expected, name
            assert value.dtype in (np.int32, np.float64), name
        elif isinstance(value, tuple) and isinstance(expected, dict):
            assert dict(value) == expected, name
        elif isinstance(value, tuple):
            assert list(value) == expected, name
        elif dataclasses.is_dataclass(value):
            assert dataclasses.asdict(value) == pytest.approx(expected), name  # type: ignore[arg-type]
        else:
            assert value == expected, name


def test_kinds_and_order() -> None:
    events = [decode(orjson.dumps(EXAMPLES[t])) for t in ("job_step", "gpu_status", "energy_price")]
    core = to_core_events(events)
    assert [type(c) for c in core] == [
        batches.JobStep,
        batches.GpuStatusChange,
        batches.EnergyPrice,
    ]
    started = to_core(decode(orjson.dumps(EXAMPLES["job_started"])))
    assert isinstance(started, batches.JobStarted)
    assert started.gpu_indices.dtype == np.int32
    assert started.model.params == 314e9


def test_telemetry_is_refused() -> None:
    with pytest.raises(TypeError, match="telemetry_batch"):
        to_core(decode(orjson.dumps(EXAMPLES["gpu_telemetry"])))
