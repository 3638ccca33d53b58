"""``twin broker start | stop | status | fetch``: the embedded local Kafka broker."""

from __future__ import annotations

import argparse
from typing import Any

from streams import broker
from streams.cli.main import CliError
from streams.cli.options import add_setting_flags, settings_from_args
from streams.settings import Settings

__all__ = ["register"]

# Exit code of `status` when the broker is not running (LSB convention).
_NOT_RUNNING = 3


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="start, stop or inspect the local Kafka broker",
        description=(
            "The embedded single-node Apache Kafka broker (KRaft) that the twin runs when no "
            "cluster is configured. Its data lives under <data dir>/kafka and survives restarts."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    start = actions.add_parser("start", help="start the broker (fetching its jars if missing)")
    add_setting_flags(
        start,
        "data_dir",
        "broker_port",
        "broker_controller_port",
        "broker_heap",
        "broker_start_timeout_s",
    )
    start.set_defaults(func=_start)

    stop = actions.add_parser("stop", help="stop the broker (SIGTERM, then SIGKILL if it hangs)")
    add_setting_flags(stop, "data_dir")
    stop.set_defaults(func=_stop)

    status = actions.add_parser("status", help="is the broker running; pid, port, data dir")
    add_setting_flags(status, "data_dir", "broker_port", "broker_controller_port")
    status.set_defaults(func=_status)

    fetch = actions.add_parser("fetch", help="only fetch the broker jars with Maven (once)")
    fetch.set_defaults(func=_fetch)


def _local_settings(args: argparse.Namespace) -> Settings:
    settings = settings_from_args(args)
    if settings.kafka_bootstrap is not None:
        raise CliError(
            f"TWIN_KAFKA_BOOTSTRAP is set ({settings.kafka_bootstrap}): the twin uses that "
            "cluster and runs no local broker; unset it to manage the local broker"
        )
    return settings


def _start(args: argparse.Namespace) -> int:
    settings = _local_settings(args)
    try:
        result = broker.start_broker(settings)
    except broker.BrokerError as exc:
        raise CliError(str(exc)) from None
    st = result.status
    verb = "already running" if result.already_running else "started"
    print(f"broker {verb}: pid {st.pid}, bootstrap {st.bootstrap}, data in {st.broker_dir}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    settings = _local_settings(args)
    try:
        pid = broker.stop_broker(settings)
    except broker.BrokerError as exc:
        raise CliError(str(exc)) from None
    if pid is None:
        print(f"broker not running (data dir {settings.broker_dir.resolve()})")
    else:
        print(f"broker stopped: pid {pid}")
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    st = broker.broker_status(settings)
    rows = [
        ("running", "yes" if st.running else "no"),
        ("pid", str(st.pid) if st.pid is not None else "-"),
        ("bootstrap", st.bootstrap),
        ("controller port", str(st.controller_port)),
        ("data dir", str(st.broker_dir)),
        ("log", str(st.log_file)),
    ]
    if settings.kafka_bootstrap is not None:
        rows.append(("configured cluster", f"{settings.kafka_bootstrap} (the twin uses this)"))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key + ':':<{width + 1}}  {value}")
    return 0 if st.running else _NOT_RUNNING


def _fetch(args: argparse.Namespace) -> int:
    try:
        lib = broker.fetch_jars()
    except broker.BrokerError as exc:
        raise CliError(str(exc)) from None
    print(f"broker jars in {lib}")
    return 0
