"""Lease events (``facility.leases``, keyed by lease id)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.envelope import (
    EventBase,
    GpuIndex,
    Id,
    NonNegInt,
    PosInt,
    TimeNs,
    check_unique,
    rule_error,
)
from schemas.telemetry import GpuModelName

__all__ = ["HOURS_PER_MONTH", "LeaseEnded", "LeaseNotice", "LeaseSigned"]

#: Revenue accrues per second at usd_per_month / (HOURS_PER_MONTH x 3600).
HOURS_PER_MONTH = 730


class LeaseSigned(EventBase):
    """A tenant leased GPUs: a set of GPUs, or counts by model (exactly one of the two)."""

    event_type: Literal["lease_signed"] = "lease_signed"
    schema_version: Literal[1] = 1
    lease_id: Id
    tenant_id: Id
    gpu_indices: Annotated[list[GpuIndex], Field(min_length=1)] | None = None
    """The leased GPUs (dense indices), non-empty, unique; or null when gpu_counts is given."""
    gpu_counts: Annotated[dict[GpuModelName, PosInt], Field(min_length=1)] | None = None
    """Leased GPUs as counts by model (each > 0); or null when gpu_indices is given."""
    usd_per_month: Annotated[float, Field(gt=0)]
    """Price, $ per month (730 hours), > 0."""
    start_ns: TimeNs
    """Lease start, ns since the epoch."""
    end_ns: TimeNs
    """Lease end, ns since the epoch, > start_ns."""
    notice_days: NonNegInt
    """Notice period, days, >= 0."""

    @model_validator(mode="after")
    def _check_terms(self) -> LeaseSigned:
        if (self.gpu_indices is None) == (self.gpu_counts is None):
            raise rule_error(
                "gpu_indices, gpu_counts: exactly one of the two must be given "
                f"(got {'both' if self.gpu_indices is not None else 'neither'})"
            )
        if self.gpu_indices is not None:
            check_unique("gpu_indices", self.gpu_indices)
        if self.end_ns <= self.start_ns:
            raise rule_error(f"end_ns: must be > start_ns ({self.start_ns}); got {self.end_ns}")
        return self


class LeaseNotice(EventBase):
    """Notice was given: the lease ends at ``effective_end_ns``."""

    event_type: Literal["lease_notice"] = "lease_notice"
    schema_version: Literal[1] = 1
    lease_id: Id
    effective_end_ns: TimeNs
    """When the lease ends, ns since the epoch."""


class LeaseEnded(EventBase):
    """The lease ended."""

    event_type: Literal["lease_ended"] = "lease_ended"
    schema_version: Literal[1] = 1
    lease_id: Id
