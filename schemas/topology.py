"""Topology events (``facility.topology``, keyed by rack id): installs and GPU status."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.envelope import (
    INT32_MAX,
    EventBase,
    GpuIndex,
    Id,
    PosInt,
    check_equal_lengths,
    check_unique,
)
from schemas.telemetry import GpuModelName

__all__ = ["GpuStatus", "RackInstalled"]


class RackInstalled(EventBase):
    """A rack (or node) was installed: it assigns the twin's dense GPU indices."""

    event_type: Literal["rack_installed"] = "rack_installed"
    schema_version: Literal[1] = 1
    rack_id: Id
    campus_id: Id
    hall_id: Id
    gpu_model: GpuModelName
    """GPU model of every GPU in the rack."""
    gpus_per_node: PosInt
    """GPUs per server (8 for HGX, 4 per NVL72 compute tray), > 0."""
    gpu_index: Annotated[list[GpuIndex], Field(min_length=1)]
    """Column: dense GPU indices, unique."""
    gpu_uuid: Annotated[list[str], Field(min_length=1)]
    """Column: GPU UUIDs, one per gpu_index."""

    @model_validator(mode="after")
    def _check_columns(self) -> RackInstalled:
        check_equal_lengths({"gpu_index": self.gpu_index, "gpu_uuid": self.gpu_uuid})
        check_unique("gpu_index", self.gpu_index)
        return self


class GpuStatus(EventBase):
    """GPUs failed, were repaired, or were drained."""

    event_type: Literal["gpu_status"] = "gpu_status"
    schema_version: Literal[1] = 1
    action: Literal["failed", "repaired", "drained"]
    gpu_indices: Annotated[list[GpuIndex], Field(min_length=1)]
    """The GPUs concerned (dense indices), non-empty, unique."""
    xid: Annotated[int, Field(ge=0, le=INT32_MAX)] | None
    """The XID error code behind a failure, or null."""
    reason: str

    @model_validator(mode="after")
    def _check_gpus(self) -> GpuStatus:
        check_unique("gpu_indices", self.gpu_indices)
        return self
