"""Scenario variants shared by the simulator's tests."""

from __future__ import annotations

import tomllib
from typing import Any

from sim.scenario import scenario_path

__all__ = ["leased_small", "small_dict"]


def small_dict() -> dict[str, Any]:
    """The shipped ``small`` scenario as parsed TOML."""
    with scenario_path("small").open("rb") as fh:
        return tomllib.load(fh)


def leased_small() -> dict[str, Any]:
    """The small facility leased to two tenants, with a notice that ends one lease in the run,
    frequent failures and flaky links, so every event type shows up within a minute."""
    data = small_dict()
    data["lease"] = [
        {
            "id": "lease-a",
            "tenant": "acme",
            "usd_per_month": 9.0e6,
            "gpus": {"H100": 1024, "GB200": 144},
            "start": "2026-10-01",
            "end": "2027-10-01",
            "notice_days": 0,
            "notice_after": "20s",
        },
        {
            "id": "lease-b",
            "tenant": "beta",
            "usd_per_month": 6.0e6,
            "gpus": {"H200": 768, "H100": 1024},
            "start": "2026-10-01",
            "end": "2027-10-01",
            "notice_days": 90,
        },
    ]
    data["job"] = [
        {
            "id": "acme-train",
            "tenant": "acme",
            "gpus": 1000,
            "models": ["H100"],
            "tokens_per_step": 1_500_000,
            "restart_s": 5.0,
        },
        {
            "id": "beta-train",
            "tenant": "beta",
            "gpus": 700,
            "models": ["H200"],
            "tokens_per_step": 1_000_000,
            "work_share": "speed",
            "restart_s": 5.0,
            "checkpoint_interval_s": 15.0,
            "checkpoint_s": 2.0,
        },
        {
            "id": "beta-late",
            "tenant": "beta",
            "gpus": 512,
            "models": ["H100"],
            "start_after": "12s",
            "run_for": "20s",
            "tokens_per_step": 1_000_000,
        },
    ]
    data["failures"] = {
        "gpu_failures_per_gpu_hour": 0.2,
        "repair_hours_mean": 0.01,
        "repair_hours_min": 0.002,
    }
    data["network"] = {"degradations_per_link_hour": 200.0, "degradation_minutes_mean": 0.2}
    data["price"] = [{"at": "30s", "usd_per_mwh": 75.0}]
    return data
