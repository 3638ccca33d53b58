"""The Faust application, made by a factory (never at import time: faust-streaming binds the
event loop when an app is created).

Two agents consume the input topics in batches (``stream.take_events``): one for
``facility.gpu``, one for the low-volume facility topics. Both hand raw records to the same
:class:`streams.worker.TwinWorker`. The twin state is plain numpy in the worker, not a Faust
Table: recovery is the newest DuckDB snapshot plus a replay of the log from the offsets it
records, which the ``on_partitions_assigned`` handler seeks to.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from kafka import KafkaConsumer, TopicPartition

from streams.pipeline import CLOCK_TOPIC, TOPIC_RANK, Record
from streams.settings import Settings
from streams.topics import DEFAULT_PARTITIONS, TWIN_DEADLETTER, TWIN_KPIS
from streams.worker import TwinWorker, kpi_messages

__all__ = ["CONTROL_TOPICS", "end_offsets", "make_app", "run_faust"]

log = logging.getLogger(__name__)

CONTROL_TOPICS: tuple[str, ...] = TOPIC_RANK  # every input topic but the telemetry


#: How long the broker may hold a fetch that finds no new record (Faust's aiokafka driver fixes
#: it at 1,500 ms). aiokafka keeps one fetch in flight per broker and leaves out of it the
#: partitions whose fetched records are not consumed yet; while reading a backlog that fetch often
#: holds only partitions with nothing new (the low-volume topics, partitions read to their end),
#: and the telemetry partitions drained meanwhile wait for it: ~1.3 s stalls every few batches,
#: half the throughput of a replay or catch-up (bench/bench_worker.py). Idle, it costs a few
#: fetch requests per second.
FETCH_MAX_WAIT_MS = 100


def _shorten_fetch_wait(app: faust.App, wait_ms: int = FETCH_MAX_WAIT_MS) -> bool:
    """Set the fetch wait of the app's aiokafka consumer (no Faust setting reaches it); False
    when this Faust version keeps the consumer elsewhere (then its default stays)."""
    consumer: Any = app.consumer  # the thread-delegating consumer of Faust's aiokafka driver
    try:
        fetcher = consumer._thread._ensure_consumer()._fetcher
    except (AttributeError, ConsumerNotStarted):
        return False
    if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
        return False
    fetcher._fetch_max_wait_ms = int(wait_ms)
    return True


def _records(events: Any) -> list[Record]:
    out = []
    for e in events:
        m = e.message
        out.append(Record(m.topic, m.partition, m.offset, m.key, m.value))
    return out


def _faust_credentials(settings: Settings) -> Any:
    """SASL/TLS settings in Faust's terms (None for plaintext)."""
    proto = settings.security_protocol
    if proto == "PLAINTEXT":
        return None
    ctx = settings.ssl_context()
    if settings.sasl_mechanism is not None:
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        return faust.SASLCredentials(
            username=settings.sasl_username or "",
            password=password,
            mechanism=settings.sasl_mechanism,
            ssl_context=ctx,
        )
    return faust.SSLCredentials(ctx)


def make_app(settings: Settings, bootstrap: str, worker: TwinWorker) -> faust.App:
    """A Faust app whose agents feed ``worker``. Call ``worker.start()`` first (recovery)."""
    cfg = worker.config
    app = faust.App(
        cfg.group_id,
        broker=f"kafka://{bootstrap}",
        broker_credentials=_faust_credentials(settings),
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,  # topics are created explicitly (streams.topics)
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=cfg.take_max,
        stream_buffer_maxsize=4 * cfg.take_max,
        producer_max_request_size=16 * 1024 * 1024,
        datadir=str(settings.data_dir / "faust"),
        # a SIGKILLed worker's partitions go to its successor within seconds, not a minute
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
    )
    gpu_topic = app.topic(CLOCK_TOPIC, key_type=bytes, value_type=bytes)
    control_topic = app.topic(*CONTROL_TOPICS, key_type=bytes, value_type=bytes)
    out_topics = {
        TWIN_KPIS: app.topic(TWIN_KPIS, key_type=bytes, value_type=bytes,
                             partitions=DEFAULT_PARTITIONS[TWIN_KPIS]),
        TWIN_DEADLETTER: app.topic(TWIN_DEADLETTER, key_type=bytes, value_type=bytes,
                                   partitions=DEFAULT_PARTITIONS[TWIN_DEADLETTER]),
    }

    async def publish(topic: str, key: bytes | None, value: bytes) -> None:
        await out_topics[topic].send(key=key, value=value)

    worker.publish = publish
    lock = asyncio.Lock()

    def note_highwaters() -> None:
        """What the broker holds beyond what we read, per low-volume partition (see
        Pipeline.set_backlog): the watermark waits until we have read it."""
        ends = {}
        for tp in app.consumer.assignment():
            if tp.topic != CLOCK_TOPIC:
                hw = app.consumer.highwater(tp)
                if hw is not None:
                    ends[(tp.topic, tp.partition)] = int(hw)
        worker.pipeline.set_backlog(ends)

    async def consume(stream: Any) -> None:
        async for events in stream.take_events(cfg.take_max, within=cfg.take_within_s):
            async with lock:  # one batch at a time through the fold
                note_highwaters()
                await worker.on_records(_records(events))

    app.agent(gpu_topic, name="telemetry")(consume)
    app.agent(control_topic, name="control")(consume)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _seek(sender: Any, assigned: set[TP], **_: Any) -> None:
        """Position the assigned partitions where the snapshot (or ``--fresh``) says.

        Faust seeks every partition to the group's committed offset after this signal, so the
        positions are *committed* for the group (by this member, which the broker accepts)
        and then Faust's own seek lands on them. Done once, for the first assignment; records
        Faust fetched before are skipped by the pipeline (see Pipeline.known_offsets)."""
        worker.pipeline.expect(tp.partition for tp in assigned if tp.topic == CLOCK_TOPIC)
        if not _shorten_fetch_wait(app):
            log.warning("could not shorten the consumer's fetch wait (Faust internals changed)")
        positions = {
            tp: worker.resume[(tp.topic, tp.partition)]
            for tp in assigned
            if (tp.topic, tp.partition) in worker.resume
        }
        if not positions:
            return
        # Faust has no public API to commit chosen offsets; its consumer has this one
        consumer: Any = app.consumer
        committed = await consumer._commit(positions)
        for tp, offset in positions.items():
            await app.consumer.seek(tp, offset)
            log.info("positioned %s[%d] at offset %d", tp.topic, tp.partition, offset)
        if not committed:
            log.warning("could not commit the snapshot offsets; relying on the seek alone")
        worker.resume = {}

    if cfg.idle_exit_s is not None:
        idle = cfg.idle_exit_s
        stopping: list[bool] = []

        @app.timer(interval=min(1.0, idle / 2))  # type: ignore[untyped-decorator]
        async def _stop_when_idle() -> None:
            """Stop a finite run: once whoever feeds the topics is done and every partition
            has been read to where it ended (``worker.stop_at``), or after ``idle`` seconds
            without a record for a standalone worker (a consumer can pause for seconds, so
            a feeder's run never relies on the wall clock alone)."""
            if worker.input_done is not None and not worker.input_done.is_set():
                return
            quiet = time.monotonic() - worker.stats.last_record
            if worker.stop_at is not None:
                if not worker.caught_up() and quiet < max(idle, 120.0):
                    return
                if not worker.caught_up():
                    log.warning("stopping %.0f s after the last record, not caught up", quiet)
            elif quiet < idle:
                return
            if worker.stats.records == 0 and worker.input_done is None:
                return  # a standalone worker waits for its first record
            if stopping:
                return
            stopping.append(True)
            async with lock:
                ticks = worker.flush()
                for tick in ticks:
                    for key, value in kpi_messages(cfg.run_id, tick):
                        await publish(TWIN_KPIS, key, value)
            log.info("input done and read: stopping")
            os.kill(os.getpid(), signal.SIGTERM)

    return app


def run_faust(app: faust.App, log_level: str = "warn") -> None:
    """Run a Faust worker for ``app`` in this thread until it stops (signal or idle exit).

    Returns normally; Faust's own SystemExit at the end is absorbed. No terminal spinner."""
    worker = faust.Worker(app, loglevel=log_level, quiet=True)
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise


def end_offsets(settings: Settings, bootstrap: str) -> dict[tuple[str, int], int]:
    """The current end offset of every input partition (a fresh run reads only what comes next)."""
    consumer = KafkaConsumer(**settings.kafka_python_kwargs(bootstrap))
    try:
        tps = [
            TopicPartition(t, p)
            for t in (CLOCK_TOPIC, *CONTROL_TOPICS)
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): int(off) for tp, off in ends.items()}
