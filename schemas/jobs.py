"""Training-job lifecycle events (``facility.jobs``, keyed by job id)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.envelope import (
    INT32_MAX,
    EventBase,
    GpuIndex,
    Id,
    NonNegInt,
    PosFloat,
    PosInt,
    check_unique,
    rule_error,
)

__all__ = [
    "JobCheckpoint",
    "JobFailed",
    "JobFinished",
    "JobStarted",
    "JobStep",
    "JobSubmitted",
    "ModelSpec",
    "Parallelism",
]

Degree = Annotated[int, Field(ge=1, le=INT32_MAX)]


class ModelSpec(BaseModel):
    """The trained model, enough to count model FLOPs per token (PaLM: 6N + 12·L·H·Q·T)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )

    params: PosInt
    """N: parameter count, > 0."""
    layers: PosInt
    """L: transformer layers, > 0."""
    heads: PosInt
    """H: attention heads, > 0."""
    head_dim: PosInt
    """Q: head dimension, > 0."""
    seq_len: PosInt
    """T: sequence length in tokens, > 0."""
    dtype: Literal["bf16", "fp8"]
    """Training dtype; selects the peak FLOP/s that MFU is measured against."""
    attention: bool = True
    """Count the attention term 12·L·H·Q·T in the model FLOPs."""


class Parallelism(BaseModel):
    """Parallelism degrees of the job."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )

    data: Degree
    """Data-parallel degree, >= 1."""
    tensor: Degree
    """Tensor-parallel degree, >= 1."""
    pipeline: Degree
    """Pipeline-parallel degree, >= 1."""


class JobSubmitted(EventBase):
    """A job entered the queue."""

    event_type: Literal["job_submitted"] = "job_submitted"
    schema_version: Literal[1] = 1
    job_id: Id
    tenant_id: Id
    gpus_requested: PosInt
    """GPUs asked for, > 0."""


class JobStarted(EventBase):
    """A job started on a set of GPUs."""

    event_type: Literal["job_started"] = "job_started"
    schema_version: Literal[1] = 1
    job_id: Id
    tenant_id: Id
    gpu_indices: Annotated[list[GpuIndex], Field(min_length=1)]
    """The job's GPUs (dense indices), non-empty, unique."""
    work_share: list[Annotated[float, Field(gt=0)]] | None = None
    """Relative work each GPU is given (same length as gpu_indices, each > 0); equal if absent."""
    model: ModelSpec
    parallelism: Parallelism

    @model_validator(mode="after")
    def _check_gpus(self) -> JobStarted:
        check_unique("gpu_indices", self.gpu_indices)
        if self.work_share is not None and len(self.work_share) != len(self.gpu_indices):
            raise rule_error(
                f"work_share: length {len(self.work_share)} must equal the length of "
                f"gpu_indices ({len(self.gpu_indices)})"
            )
        return self


class JobStep(EventBase):
    """A training step completed; ``ts_ns`` is the step's end."""

    event_type: Literal["job_step"] = "job_step"
    schema_version: Literal[1] = 1
    job_id: Id
    step: NonNegInt
    """Step number, >= 0."""
    tokens: PosInt
    """Tokens processed in the step, > 0."""
    duration_s: PosFloat
    """Wall time of the step, s, > 0."""
    exposed_comm_s: Annotated[float, Field(ge=0)]
    """Communication not overlapped with compute, s, 0 <= x <= duration_s."""

    @model_validator(mode="after")
    def _check_comm(self) -> JobStep:
        if self.exposed_comm_s > self.duration_s:
            raise rule_error(
                f"exposed_comm_s: must be <= duration_s ({self.duration_s!r}); "
                f"got {self.exposed_comm_s!r}"
            )
        return self


class JobCheckpoint(EventBase):
    """A checkpoint was written after ``step``."""

    event_type: Literal["job_checkpoint"] = "job_checkpoint"
    schema_version: Literal[1] = 1
    job_id: Id
    step: NonNegInt
    """Step the checkpoint was taken after, >= 0."""
    duration_s: PosFloat
    """Time the job spent checkpointing, s, > 0."""


class JobFailed(EventBase):
    """A job failed (it may restart: a later ``job_started`` with the same id)."""

    event_type: Literal["job_failed"] = "job_failed"
    schema_version: Literal[1] = 1
    job_id: Id
    reason: str
    failed_gpu_indices: list[GpuIndex]
    """GPUs blamed for the failure, unique (may be empty)."""

    @model_validator(mode="after")
    def _check_gpus(self) -> JobFailed:
        check_unique("failed_gpu_indices", self.failed_gpu_indices)
        return self


class JobFinished(EventBase):
    """A job finished normally."""

    event_type: Literal["job_finished"] = "job_finished"
    schema_version: Literal[1] = 1
    job_id: Id
    steps: NonNegInt
    """Steps completed, >= 0."""
