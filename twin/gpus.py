"""Accelerator reference table (FACTS.md section 2): dense tensor throughput, no sparsity.

This is reference data, not configuration: scenario files choose which models a facility has,
and a job may override peak FLOP/s with its own figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["GPU_MODELS", "MODEL_NAMES", "GpuSpec", "gpu_spec", "model_code"]


@dataclass(frozen=True, slots=True)
class GpuSpec:
    name: str
    bf16_tflops: float
    fp8_tflops: float | None
    tdp_w: float
    hbm_gb: float
    hbm_tb_s: float
    idle_w: float  # typical idle board power with a context open (FACTS: 80-145 W, uncertain)

    def peak_flops(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype`` ("bf16" or "fp8")."""
        if dtype == "bf16":
            return self.bf16_tflops * 1e12
        if dtype == "fp8":
            if self.fp8_tflops is None:
                raise ValueError(f"{self.name} has no FP8 tensor cores")
            return self.fp8_tflops * 1e12
        raise ValueError(f"unknown dtype {dtype!r}: expected 'bf16' or 'fp8'")


GPU_MODELS: Final[dict[str, GpuSpec]] = {
    "A100": GpuSpec("A100", 312.0, None, 400.0, 80.0, 2.04, 60.0),
    "H100": GpuSpec("H100", 989.4, 1978.9, 700.0, 80.0, 3.35, 100.0),
    "H200": GpuSpec("H200", 989.4, 1978.9, 700.0, 141.0, 4.8, 110.0),
    "B200": GpuSpec("B200", 2250.0, 4500.0, 1000.0, 180.0, 8.0, 140.0),
    "GB200": GpuSpec("GB200", 2500.0, 5000.0, 1200.0, 186.0, 8.0, 150.0),
}

#: Stable small-integer codes for the models, used in state arrays (index into this tuple).
MODEL_NAMES: Final[tuple[str, ...]] = tuple(GPU_MODELS)


def gpu_spec(name: str) -> GpuSpec:
    """Look a model up by name, case-insensitively; a clear error names the known models."""
    key = name.strip().upper()
    try:
        return GPU_MODELS[key]
    except KeyError:
        known = ", ".join(GPU_MODELS)
        raise ValueError(f"unknown GPU model {name!r}: known models are {known}") from None


def model_code(name: str) -> int:
    """Index of a model in :data:`MODEL_NAMES`."""
    return MODEL_NAMES.index(gpu_spec(name).name)
