"""``twin mfu``: the MFU calculator (PaLM definition; see :mod:`twin.mfu`).

Examples::

    twin mfu --params 70e9 --layers 80 --heads 64 --head-dim 128 --seq-len 8192 \\
        --tokens-per-s 2.5e6 --gpus 4096 --gpu H100
    twin mfu --flops-per-token 4.2e11 --tokens-per-s 1e6 --gpus 1024:H100 --gpus 512:GB200 --json

The calculator is pure arithmetic on its flags, so its flags have no ``TWIN_`` settings.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from streams.cli.main import CliError
from twin.gpus import GPU_MODELS
from twin.mfu import FleetPart, MfuReport, mfu_report

__all__ = ["parse_fleet", "register", "run"]

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def _number(text: str) -> float:
    """A number, optionally with a K/M/B/T suffix (``70B`` = 7e10)."""
    raw = text.strip()
    scale = 1.0
    if raw and raw[-1].lower() in _SUFFIX:
        scale = _SUFFIX[raw[-1].lower()]
        raw = raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _integer(text: str) -> int:
    value = _number(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return int(value)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    models = ", ".join(GPU_MODELS)
    parser = subparsers.add_parser(
        "mfu",
        help="model FLOPs utilization of a training run (PaLM definition)",
        description=(
            "MFU = achieved model FLOP/s / the fleet's dense peak FLOP/s. Model FLOPs per token "
            "= 6N + 12*L*H*Q*T (drop the attention term with --no-attention), or give "
            "--flops-per-token. Numbers accept K/M/B/T suffixes (70B = 7e10)."
        ),
    )
    model = parser.add_argument_group("model (or --flops-per-token)")
    model.add_argument("--params", type=_number, metavar="N", help="parameters N")
    model.add_argument("--layers", type=_integer, metavar="L", help="layers L")
    model.add_argument("--heads", type=_integer, metavar="H", help="attention heads H")
    model.add_argument("--head-dim", type=_integer, metavar="Q", help="head dimension Q")
    model.add_argument("--seq-len", type=_integer, metavar="T", help="sequence length T")
    model.add_argument(
        "--flops-per-token", type=_number, metavar="F", help="model FLOPs per token, directly"
    )
    model.add_argument(
        "--no-attention",
        action="store_true",
        help="leave out the 12*L*H*Q*T attention term (6N only)",
    )
    run_group = parser.add_argument_group("run")
    run_group.add_argument(
        "--tokens-per-s", type=_number, required=True, metavar="X", help="training throughput"
    )
    run_group.add_argument(
        "--gpus",
        action="append",
        required=True,
        metavar="COUNT[:MODEL]",
        help=f"accelerators; repeat COUNT:MODEL for a mixed fleet (models: {models})",
    )
    run_group.add_argument("--gpu", metavar="MODEL", help="model of a bare --gpus COUNT")
    run_group.add_argument(
        "--peak-tflops", type=_number, metavar="P", help="peak TFLOP/s per GPU of a bare COUNT"
    )
    run_group.add_argument(
        "--dtype", choices=("bf16", "fp8"), default="bf16", help="training dtype (default bf16)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def parse_fleet(specs: list[str], gpu: str | None, peak_tflops: float | None) -> list[FleetPart]:
    """``--gpus`` values into fleet parts (raises CliError with a clear message)."""
    if gpu is not None and peak_tflops is not None:
        raise CliError("give --gpu MODEL or --peak-tflops P, not both")
    parts: list[FleetPart] = []
    for spec in specs:
        count_text, _, model = spec.partition(":")
        try:
            count = _integer(count_text)
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"--gpus {spec!r}: {exc}") from None
        if count <= 0:
            raise CliError(f"--gpus {spec!r}: the GPU count must be > 0")
        if model:
            parts.append(FleetPart(count, model=model.strip()))
        elif gpu is not None:
            parts.append(FleetPart(count, model=gpu))
        elif peak_tflops is not None:
            parts.append(FleetPart(count, peak_tflops=peak_tflops))
        else:
            raise CliError(f"--gpus {spec!r}: say which GPU (COUNT:MODEL, --gpu or --peak-tflops)")
    return parts


def _report(args: argparse.Namespace) -> MfuReport:
    if (args.params is None) == (args.flops_per_token is None):
        raise CliError("give either --params (with the model shape) or --flops-per-token")
    for flag, value in (
        ("--params", args.params),
        ("--flops-per-token", args.flops_per_token),
        ("--tokens-per-s", args.tokens_per_s),
        ("--peak-tflops", args.peak_tflops),
        ("--layers", args.layers),
        ("--heads", args.heads),
        ("--head-dim", args.head_dim),
        ("--seq-len", args.seq_len),
    ):
        if value is not None and value < 0:
            raise CliError(f"{flag} must not be negative (got {value:g})")
    attention = not args.no_attention and args.flops_per_token is None
    if attention:
        missing = [
            flag
            for flag, value in (
                ("--layers", args.layers),
                ("--heads", args.heads),
                ("--head-dim", args.head_dim),
                ("--seq-len", args.seq_len),
            )
            if value is None
        ]
        if missing:
            raise CliError(
                f"the attention term needs {', '.join(missing)} (or pass --no-attention)"
            )
    fleet = parse_fleet(args.gpus, args.gpu, args.peak_tflops)
    try:
        report = mfu_report(
            fleet=fleet,
            tokens_per_s=args.tokens_per_s,
            flops_per_token=args.flops_per_token,
            params=args.params,
            layers=args.layers or 0,
            heads=args.heads or 0,
            head_dim=args.head_dim or 0,
            seq_len=args.seq_len or 0,
            attention=attention,
            dtype=args.dtype,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if report.mfu > 1.0:
        raise CliError(
            f"achieved {report.achieved_flops:.4g} FLOP/s exceeds the fleet's peak "
            f"{report.peak_flops:.4g} FLOP/s (MFU {report.mfu:.2f}): check the inputs"
        )
    return report


def run(args: argparse.Namespace) -> int:
    report = _report(args)
    if args.json:
        print(
            json.dumps(
                {
                    "mfu": report.mfu,
                    "flops_per_token": report.flops_per_token,
                    "tokens_per_s": report.tokens_per_s,
                    "achieved_flops": report.achieved_flops,
                    "peak_flops": report.peak_flops,
                    "gpus": report.gpus,
                    "dtype": report.dtype,
                    "attention": report.attention,
                }
            )
        )
        return 0
    table = Table(title="Model FLOPs utilization", show_header=False)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("model FLOPs per token", f"{report.flops_per_token:.4g}")
    attention = {True: "counted", False: "left out", None: "(in --flops-per-token)"}
    table.add_row("attention term", attention[report.attention])
    table.add_row("tokens per second", f"{report.tokens_per_s:.4g}")
    table.add_row("achieved FLOP/s", f"{report.achieved_flops:.4g}")
    table.add_row(f"peak FLOP/s ({report.gpus} GPUs, {report.dtype})", f"{report.peak_flops:.4g}")
    table.add_row("MFU", f"{report.mfu:.2%}")
    Console().print(table)
    return 0
