"""The MFU calculator, importable (twin.mfu) and as ``twin mfu``; hand-computed cases."""

from __future__ import annotations

import json

import pytest

from streams.cli.main import main
from twin.mfu import FleetPart, fleet_peak_flops, mfu, mfu_report, model_flops_per_token

# a 70B model, 80 layers, 64 heads of 128, 8k context
ATTN = 12 * 80 * 64 * 128 * 8192  # 6.442450944e10
N = 70e9


def test_flops_per_token_with_and_without_attention() -> None:
    assert model_flops_per_token(N, 80, 64, 128, 8192) == 6 * N + ATTN
    assert model_flops_per_token(N, attention=False) == 6 * N


def test_mixed_fleet_peak_is_the_sum_of_each_gpus_peak() -> None:
    fleet = [FleetPart(2, "H100"), FleetPart(1, "GB200"), FleetPart(3, peak_tflops=100)]
    assert fleet_peak_flops(fleet) == pytest.approx(2 * 989.4e12 + 2500e12 + 3 * 100e12)
    assert fleet_peak_flops([FleetPart(1, "h200")], "fp8") == pytest.approx(1978.9e12)


def test_report_hand_computed() -> None:
    report = mfu_report(
        fleet=[FleetPart(1000, "H100")],
        tokens_per_s=1e6,
        params=N,
        layers=80,
        heads=64,
        head_dim=128,
        seq_len=8192,
    )
    assert report.achieved_flops == pytest.approx((6 * N + ATTN) * 1e6)
    assert report.mfu == pytest.approx((6 * N + ATTN) * 1e6 / (1000 * 989.4e12))
    assert mfu(1.0, 4.0) == 0.25


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: model_flops_per_token(-1), "params"),
        (lambda: model_flops_per_token(N, 0, 64, 128, 8192), "layers"),
        (lambda: fleet_peak_flops([FleetPart(0, "H100")]), "count"),
        (lambda: fleet_peak_flops([FleetPart(1, "X9")]), "unknown GPU model"),
        (lambda: fleet_peak_flops([FleetPart(1, "A100")], "fp8"), "FP8"),
        (lambda: fleet_peak_flops([]), "at least one"),
        (lambda: mfu(1.0, 0.0), "peak"),
    ],
)
def test_bad_input_raises(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["mfu", *argv, "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_cli_with_attention(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys,
        "--params",
        "70B",
        "--layers",
        "80",
        "--heads",
        "64",
        "--head-dim",
        "128",
        "--seq-len",
        "8192",
        "--tokens-per-s",
        "1e6",
        "--gpus",
        "1000",
        "--gpu",
        "H100",
    )
    assert out["mfu"] == pytest.approx((6 * N + ATTN) * 1e6 / (1000 * 989.4e12))
    assert out["attention"] is True


def test_cli_without_attention(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys,
        "--params",
        "70e9",
        "--no-attention",
        "--tokens-per-s",
        "1e6",
        "--gpus",
        "1000",
        "--gpu",
        "H100",
    )
    assert out["mfu"] == pytest.approx(6 * N * 1e6 / (1000 * 989.4e12))
    assert out["attention"] is False


def test_cli_mixed_fleet_and_flops_per_token(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys,
        "--flops-per-token",
        "4.2e11",
        "--tokens-per-s",
        "1e6",
        "--gpus",
        "1024:H100",
        "--gpus",
        "512:GB200",
    )
    assert out["mfu"] == pytest.approx(4.2e17 / (1024 * 989.4e12 + 512 * 2500e12))
    assert 0.0 <= float(out["mfu"]) <= 1.0  # type: ignore[arg-type]
    assert out["gpus"] == 1536


def test_cli_peak_tflops_and_fp8(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys,
        "--flops-per-token",
        "1e9",
        "--tokens-per-s",
        "1e5",
        "--gpus",
        "10",
        "--peak-tflops",
        "100",
    )
    assert out["mfu"] == pytest.approx(1e14 / 1e15)
    fp8 = _json(
        capsys,
        "--flops-per-token",
        "1e9",
        "--tokens-per-s",
        "1e5",
        "--gpus",
        "1:H100",
        "--dtype",
        "fp8",
    )
    assert fp8["mfu"] == pytest.approx(1e14 / 1978.9e12)


def test_cli_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "mfu",
                "--params",
                "70B",
                "--no-attention",
                "--tokens-per-s",
                "1e6",
                "--gpus",
                "1000:H100",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "MFU" in out
    assert "42.45%" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpus", "0:H100"], "count must be > 0"),
        (["--gpus", "8:X100"], "unknown GPU model 'X100'"),
        (["--gpus", "8"], "say which GPU"),
        (["--gpus", "8", "--gpu", "H100", "--peak-tflops", "5"], "not both"),
        (["--gpus", "8:H100", "--tokens-per-s=-5"], "must not be negative"),
        (["--gpus", "8:A100", "--dtype", "fp8"], "FP8"),
        (["--gpus", "1:H100", "--tokens-per-s", "1e12"], "exceeds the fleet's peak"),
    ],
)
def test_cli_bad_input_is_a_clear_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["mfu", "--params", "70B", "--no-attention", "--tokens-per-s", "1e6"]
    assert main([*base, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_cli_model_or_flops_per_token_and_attention_shape(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["mfu", "--tokens-per-s", "1", "--gpus", "1:H100"]) == 2
    assert "either --params" in capsys.readouterr().err
    assert main(["mfu", "--params", "7B", "--tokens-per-s", "1", "--gpus", "1:H100"]) == 2
    assert "--no-attention" in capsys.readouterr().err
