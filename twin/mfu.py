"""Model FLOPs Utilization, as the PaLM paper defines it (FACTS.md section 3).

- model FLOPs per token = 6N + 12·L·H·Q·T (the attention term may be left out; both are offered)
- achieved FLOP/s = model FLOPs per token x tokens per second
- MFU = achieved FLOP/s / the sum of each accelerator's dense peak FLOP/s for the training dtype

Recomputed activations never count (that would be HFU). A mixed fleet's peak is the sum over its
GPUs of each GPU's own peak.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from twin.gpus import gpu_spec

__all__ = [
    "FleetPart",
    "MfuReport",
    "achieved_flops",
    "fleet_peak_flops",
    "mfu",
    "mfu_report",
    "model_flops_per_token",
]


def model_flops_per_token(
    params: float,
    layers: int = 0,
    heads: int = 0,
    head_dim: int = 0,
    seq_len: int = 0,
    *,
    attention: bool = True,
) -> float:
    """6N + 12·L·H·Q·T; with ``attention=False`` just 6N. Raises ValueError on bad input."""
    if not params > 0:
        raise ValueError(f"params must be > 0, got {params}")
    total = 6.0 * float(params)
    if attention:
        for name, value in (
            ("layers", layers),
            ("heads", heads),
            ("head_dim", head_dim),
            ("seq_len", seq_len),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0 when the attention term is counted")
        total += 12.0 * float(layers) * float(heads) * float(head_dim) * float(seq_len)
    return total


def achieved_flops(flops_per_token: float, tokens_per_s: float) -> float:
    """Model FLOP/s achieved."""
    if not flops_per_token > 0:
        raise ValueError(f"FLOPs per token must be > 0, got {flops_per_token}")
    if not tokens_per_s >= 0:
        raise ValueError(f"tokens per second must be >= 0, got {tokens_per_s}")
    return float(flops_per_token) * float(tokens_per_s)


@dataclass(frozen=True, slots=True)
class FleetPart:
    """``count`` accelerators, either a named ``model`` or an explicit ``peak_tflops``."""

    count: int
    model: str | None = None
    peak_tflops: float | None = None

    def peak_flops(self, dtype: str = "bf16") -> float:
        if self.count <= 0:
            raise ValueError(f"GPU count must be > 0, got {self.count}")
        if self.peak_tflops is not None:
            if not self.peak_tflops > 0:
                raise ValueError(f"peak TFLOP/s must be > 0, got {self.peak_tflops}")
            return self.count * self.peak_tflops * 1e12
        if self.model is None:
            raise ValueError("a fleet part needs a GPU model or a peak TFLOP/s")
        return self.count * gpu_spec(self.model).peak_flops(dtype)


def fleet_peak_flops(parts: Iterable[FleetPart], dtype: str = "bf16") -> float:
    """Aggregate dense peak FLOP/s of a possibly mixed fleet."""
    total = 0.0
    seen = False
    for part in parts:
        total += part.peak_flops(dtype)
        seen = True
    if not seen:
        raise ValueError("at least one GPU is needed")
    return total


def mfu(achieved: float, peak: float) -> float:
    """achieved / peak, as a fraction."""
    if not peak > 0:
        raise ValueError(f"peak FLOP/s must be > 0, got {peak}")
    if not achieved >= 0:
        raise ValueError(f"achieved FLOP/s must be >= 0, got {achieved}")
    return achieved / peak


@dataclass(frozen=True, slots=True)
class MfuReport:
    flops_per_token: float
    tokens_per_s: float
    achieved_flops: float
    peak_flops: float
    gpus: int
    dtype: str
    attention: bool | None  # None: FLOPs per token were given, not derived
    mfu: float


def mfu_report(
    *,
    fleet: Iterable[FleetPart],
    tokens_per_s: float,
    flops_per_token: float | None = None,
    params: float | None = None,
    layers: int = 0,
    heads: int = 0,
    head_dim: int = 0,
    seq_len: int = 0,
    attention: bool = True,
    dtype: str = "bf16",
) -> MfuReport:
    """Everything the ``twin mfu`` command prints, from either a model description or an
    explicit FLOPs-per-token figure."""
    parts = list(fleet)
    counted: bool | None = None
    if flops_per_token is None:
        counted = attention
        if params is None:
            raise ValueError("give either the model (params, ...) or FLOPs per token")
        flops_per_token = model_flops_per_token(
            params, layers, heads, head_dim, seq_len, attention=attention
        )
    achieved = achieved_flops(flops_per_token, tokens_per_s)
    peak = fleet_peak_flops(parts, dtype)
    return MfuReport(
        flops_per_token=float(flops_per_token),
        tokens_per_s=float(tokens_per_s),
        achieved_flops=achieved,
        peak_flops=peak,
        gpus=sum(p.count for p in parts),
        dtype=dtype,
        attention=counted,
        mfu=mfu(achieved, peak),
    )
