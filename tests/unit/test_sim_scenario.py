"""Scenario files: the shipped ones load with the facts' sizes; bad files fail naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.scenario import (
    ScenarioError,
    deep_merge,
    list_scenarios,
    load_scenario,
    scenario_from_dict,
)
from sim.timefmt import format_duration, parse_duration_s, parse_instant_ns
from sim.topology import build_topology
from tests.unit.sim_scenarios import small_dict

FULL_SIZE = ("colossus1-mixed", "colossus1-homogeneous", "colossus1-leased")


def _small_dict() -> dict[str, Any]:
    return small_dict()


def test_shipped_scenarios_are_listed() -> None:
    assert set(list_scenarios()) >= {*FULL_SIZE, "small"}
    assert "_defaults" not in list_scenarios()


@pytest.mark.parametrize("name", FULL_SIZE)
def test_full_size_scenarios_have_the_colossus_mix(name: str) -> None:
    scenario = load_scenario(name)
    topo = build_topology(scenario, np.random.default_rng(0))
    assert topo.n_gpus == 220_000
    assert topo.model_counts() == {"H100": 150_000, "H200": 50_000, "GB200": 20_000}
    sizes = topo.rack_sizes
    hgx = sizes[topo.rack_model != topo.rack_model[-1]]
    assert set(hgx.tolist()) <= set(range(8, 65, 8))
    assert (hgx == 64).mean() > 0.99
    nvl = sizes[topo.rack_model == topo.rack_model[-1]]
    assert (nvl == 72).mean() > 0.99
    assert len(topo.campus_ids) == 2  # jobs can span Colossus 1 and Colossus 2


def test_small_keeps_the_mix_proportions() -> None:
    topo = build_topology(load_scenario("small"), np.random.default_rng(0))
    counts = topo.model_counts()
    assert 2_000 <= topo.n_gpus <= 5_000
    assert counts["H100"] / topo.n_gpus == pytest.approx(150 / 220, abs=0.02)
    assert counts["H200"] / topo.n_gpus == pytest.approx(50 / 220, abs=0.02)
    assert counts["GB200"] / topo.n_gpus == pytest.approx(20 / 220, abs=0.02)


def test_press_facts_are_scenario_defaults_and_overridable() -> None:
    base = load_scenario("small")
    assert base.economics.energy_usd_per_mwh == 62.0
    assert base.network.fiber_us_per_km == 4.9
    changed = load_scenario("small", {"economics": {"energy_usd_per_mwh": 80.0}}, seed=99)
    assert changed.economics.energy_usd_per_mwh == 80.0
    assert changed.seed == 99
    assert changed.network == base.network


def test_scenario_file_by_path(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[2] / "sim" / "scenarios" / "small.toml"
    copy = tmp_path / "mine.toml"
    copy.write_text(src.read_text().replace('name = "small"', 'name = "mine"'))
    assert load_scenario(copy).name == "mine"


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"telemetry": {"gpu_intervals": 1.0}}, "telemetry.gpu_intervals: unknown key"),
        ({"bogus": 1}, "bogus: unknown key 'bogus'"),
        ({"telemetry": {"gpu_interval_s": -1.0}}, "telemetry.gpu_interval_s: must be > 0"),
        ({"telemetry": {"gpu_interval_s": "fast"}}, "telemetry.gpu_interval_s: expected a number"),
        ({"economics": {"energy_usd_per_mwh": 1e9}}, "economics.energy_usd_per_mwh: must be <="),
        ({"telemetry": {"power_interval_s": 1.5}}, "telemetry.power_interval_s: must be a whole"),
        ({"scenario": {"epoch": "yesterday"}}, "scenario.epoch: bad instant 'yesterday'"),
        (
            {"generation": {"H100": {"kernel_efficiency": 1.5}}},
            "generation.H100.kernel_efficiency: must be <= 1",
        ),
        ({"generation": {"X9": {}}}, "generation.X9.kernel_efficiency: missing"),
        (
            {"failures": {"xid_weights": {"abc": 1.0}}},
            "failures.xid_weights.abc: key must be an XID number",
        ),
    ],
)
def test_bad_values_name_the_key(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict(deep_merge(_small_dict(), patch))
    assert message in str(err.value)


def _with_job(**changes: Any) -> dict[str, Any]:
    data = _small_dict()
    data["job"][0].update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gpus": 0}, "job[0].gpus: must be >= 1, got 0"),
        ({"gpu": 10}, "job[0].gpu: unknown key 'gpu'"),
        ({"placement": "scatter"}, "job[0].placement: must be one of 'pack', 'spread'"),
        ({"start_after": "soon"}, "job[0].start_after: bad duration 'soon'"),
        ({"models": ["V100"]}, "job[0].models: unknown GPU model 'V100'"),
        ({"campus": "mars"}, "job[0].campus: unknown campus 'mars'"),
        ({"model": {"params": "big"}}, "job[0].model.params: expected a number"),
        ({"tensor": 64, "pipeline": 64}, "job[0]: tensor x pipeline (4096) exceeds gpus"),
    ],
)
def test_bad_jobs_name_the_job(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict(_with_job(**changes))
    assert message in str(err.value)


def test_cross_references_are_checked() -> None:
    data = _small_dict()
    data["link"][0]["campus_b"] = "atlantis"
    with pytest.raises(ScenarioError, match=r"link\[0\]\.campus_b: unknown campus 'atlantis'"):
        scenario_from_dict(data)
    data = _small_dict()
    data["campus"][0]["hall"][0]["gpus"] = 2301
    with pytest.raises(ScenarioError, match=r"campus\[0\]\.hall\[0\]\.gpus: 2301 is not a whole"):
        scenario_from_dict(data)
    data = _small_dict()
    data["campus"][1]["id"] = "colossus1"
    with pytest.raises(ScenarioError, match=r"campus\[1\]\.id: duplicate id 'colossus1'"):
        scenario_from_dict(data)


def test_unknown_scenario_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="unknown scenario 'nope': known scenarios are"):
        load_scenario("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario\nname = 1\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("2d", 172_800.0),
        ("45", 45.0),
        (" 5 m ", 300.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m10", "1h-5m", "-5s", "inf", "nan"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s(text)


def test_instants_and_formatting() -> None:
    assert parse_instant_ns("2026-10-01T00:00:00Z") == 1_790_812_800 * 10**9
    assert parse_instant_ns("2026-10-01") == parse_instant_ns("2026-10-01T00:00:00+00:00")
    assert format_duration(5400) == "1h30m"
    assert format_duration(12.5) == "12.5s"
