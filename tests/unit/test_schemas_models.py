"""The event models: round trips, the discriminator, frozen/extra rules, topics, versions."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest

import schemas
from schemas import (
    CURRENT_VERSIONS,
    EVENT_MODELS,
    EVENT_TOPIC,
    TOPIC_EVENT_TYPES,
    EventError,
    GpuTelemetry,
    JobStarted,
    ModelSpec,
    Parallelism,
    decode,
    encode,
)
from schemas.examples import example_payloads
from schemas.topics import INPUT_TOPICS
from schemas.union import EVENT_ADAPTER

EXAMPLES = example_payloads()


def test_every_event_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(EVENT_MODELS)


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_round_trip(event_type: str) -> None:
    raw = orjson.dumps(EXAMPLES[event_type])
    event = decode(raw)
    assert type(event) is EVENT_MODELS[event_type]
    assert event.event_type == event_type
    assert decode(encode(event)) == event
    # the wire form is exactly the payload (all fields, model order, no extras)
    assert orjson.loads(encode(event)) == orjson.loads(raw)


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_discriminator_picks_the_model(event_type: str) -> None:
    event = EVENT_ADAPTER.validate_python(
        EVENT_MODELS[event_type].model_validate_json(orjson.dumps(EXAMPLES[event_type]))
    )
    assert isinstance(event, EVENT_MODELS[event_type])


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_events_are_frozen(event_type: str) -> None:
    event = decode(orjson.dumps(EXAMPLES[event_type]))
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        event.seq = 99  # type: ignore[misc]


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_unknown_fields_are_rejected(event_type: str) -> None:
    payload = {**EXAMPLES[event_type], "colour": "blue"}
    with pytest.raises(EventError, match=r"^colour: unknown field"):
        decode(orjson.dumps(payload))


@pytest.mark.parametrize("field", ["ts_ns", "source_id", "seq"])
@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_envelope_fields_are_required(event_type: str, field: str) -> None:
    payload = dict(EXAMPLES[event_type])
    del payload[field]
    with pytest.raises(EventError, match=rf"^{field}: field required"):
        decode(orjson.dumps(payload))


def test_a_type_of_one_event_with_the_fields_of_another_is_rejected() -> None:
    payload = {**EXAMPLES["job_step"], "event_type": "job_finished"}
    with pytest.raises(EventError) as info:
        decode(orjson.dumps(payload))
    assert "steps: field required" in info.value.reason
    assert "tokens: unknown field" in info.value.reason


def test_python_construction_uses_defaults_for_type_and_version() -> None:
    event = JobStarted(
        ts_ns=1,
        source_id="scheduler",
        seq=0,
        job_id="j",
        tenant_id="t",
        gpu_indices=[0, 1],
        model=ModelSpec(params=1, layers=1, heads=1, head_dim=1, seq_len=1, dtype="fp8"),
        parallelism=Parallelism(data=2, tensor=1, pipeline=1),
    )
    assert event.event_type == "job_started"
    assert event.schema_version == 1
    assert event.model.attention is True
    assert decode(encode(event)) == event


def test_strict_types_refuse_coercion() -> None:
    payload: dict[str, Any] = {**EXAMPLES["job_step"], "step": "7"}
    with pytest.raises(EventError, match=r"^step: Input should be a valid integer"):
        decode(orjson.dumps(payload))
    payload = {**EXAMPLES["job_step"], "step": True}
    with pytest.raises(EventError, match=r"^step: Input should be a valid integer"):
        decode(orjson.dumps(payload))


def test_topics_cover_every_event_type_once() -> None:
    listed = [t for types in TOPIC_EVENT_TYPES.values() for t in types]
    assert sorted(listed) == sorted(EVENT_MODELS)
    assert INPUT_TOPICS == (
        "facility.gpu",
        "facility.power",
        "facility.cooling",
        "facility.jobs",
        "facility.leases",
        "facility.topology",
        "facility.network",
    )
    assert EVENT_TOPIC["gpu_telemetry"] == "facility.gpu"
    assert EVENT_TOPIC["link_state"] == "facility.network"


def test_current_versions() -> None:
    assert dict.fromkeys(EVENT_MODELS, 1) == CURRENT_VERSIONS


def test_equal_events_compare_equal_whatever_the_derived_cache() -> None:
    payload = EXAMPLES["gpu_telemetry"]
    validated = GpuTelemetry.model_validate_json(orjson.dumps(payload))
    constructed = GpuTelemetry.model_construct(**payload)  # no validation, no cached block
    assert validated == constructed
    assert validated != GpuTelemetry.model_validate_json(
        orjson.dumps({**payload, "seq": payload["seq"] + 1})
    )


def test_units_are_in_field_names() -> None:
    """Every float field says its unit (or that it is a fraction, a ratio or a count)."""
    unitless = {"state_of_charge", "loss_fraction", "sm_active", "tensor_active", "dram_active"}
    suffixes = ("_w", "_c", "_s", "_ns", "_us", "_mhz", "_pct", "_wh", "_lpm", "_gbps", "_bytes")
    for model in EVENT_MODELS.values():
        for name, field in model.model_fields.items():
            text = str(field.annotation)
            if "float" in text and name not in unitless and name != "work_share":
                assert name.endswith(suffixes) or name.startswith("usd_per_"), name


def test_schemas_imports_only_what_it_may() -> None:
    """schemas/ may use pydantic, numpy, orjson and twin.gpus/twin.batches; only jsonschema.py
    touches the filesystem; nothing imports kafka, faust or duckdb."""
    allowed = {"pydantic", "pydantic_core", "numpy", "orjson", "schemas", "twin"}
    allowed_twin = {"twin.gpus", "twin.batches"}
    for path in Path(schemas.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "twin":
                names = [f"twin.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in allowed or top in sys.stdlib_module_names, (path.name, name)
                if top == "twin":
                    assert name in allowed_twin, (path.name, name)
                if top in ("pathlib", "os", "shutil", "io"):
                    assert path.name == "jsonschema.py", (path.name, name)
