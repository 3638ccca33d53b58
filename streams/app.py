"""The Faust application, made by a factory (never at import time: faust-streaming binds the
event loop when an app is created).

``facility.gpu`` is consumed by a Faust agent in batches (``stream.take_events``), or with
``delivery = "batch"`` a fetch at a time straight from Faust's consumer
(:mod:`streams.delivery`); either way its partitions are split among the workers of the
consumer group. The low-volume facility topics (topology, jobs, leases, power, cooling,
network) are *broadcast*: every worker reads every partition of them with its own group-less
consumer, because every worker needs the whole facility's topology, jobs, leases and meters to
fold its own racks (see :mod:`streams.ownership`). Both hand raw records to the same
:class:`streams.worker.TwinWorker`, one batch at a time. The twin state is plain numpy in the
worker, not a Faust Table: recovery is the newest DuckDB snapshot plus a replay of the log from
the offsets it records, which the ``on_rebalance_complete`` handler (telemetry) and the
broadcast reader (the rest) seek to.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as AIOTopicPartition
from aiokafka.errors import KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from kafka import KafkaConsumer, TopicPartition

from streams import delivery
from streams.pipeline import CLOCK_TOPIC, TOPIC_RANK, Record
from streams.settings import Settings
from streams.topics import DEFAULT_PARTITIONS, TWIN_DEADLETTER, TWIN_KPIS, TWIN_PARTIALS
from streams.worker import TwinWorker, read_stop_file, write_stop_file

__all__ = [
    "CONTROL_TOPICS",
    "end_offsets",
    "make_app",
    "read_stop_file",
    "run_faust",
    "write_stop_file",
]

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
#: How long a tick that may close waits for the low-volume reader to start (it starts within a
#: second or two of the app; telemetry can arrive sooner)
READER_START_TIMEOUT_S = 60.0


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
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # Faust makes only its own folder
    if cfg.delivery not in delivery.DELIVERIES:
        raise ValueError(f"delivery must be one of {delivery.DELIVERIES}, not {cfg.delivery!r}")
    batch = cfg.delivery == "batch"
    if batch:
        delivery.install()
    app = faust.App(
        cfg.group_id,
        broker=f"kafka://{bootstrap}",
        broker_consumer=f"{delivery.SCHEME if batch else 'kafka'}://{bootstrap}",
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
    out_topics = {
        TWIN_KPIS: app.topic(TWIN_KPIS, key_type=bytes, value_type=bytes,
                             partitions=DEFAULT_PARTITIONS[TWIN_KPIS]),
        TWIN_DEADLETTER: app.topic(TWIN_DEADLETTER, key_type=bytes, value_type=bytes,
                                   partitions=DEFAULT_PARTITIONS[TWIN_DEADLETTER]),
        TWIN_PARTIALS: app.topic(TWIN_PARTIALS, key_type=bytes, value_type=bytes,
                                 partitions=DEFAULT_PARTITIONS[TWIN_PARTIALS]),
    }

    async def publish(topic: str, key: bytes | None, value: bytes) -> None:
        sent = await out_topics[topic].send(key=key, value=value)
        if topic == TWIN_PARTIALS:
            await sent  # delivered before the tick counts as done: a merge waits for it

    worker.publish = publish
    lock = asyncio.Lock()

    ends = end_offsets(settings, bootstrap)
    telemetry_total = sum(1 for (t, _) in ends if t == CLOCK_TOPIC)
    control_tps = sorted(tp for tp in ends if tp[0] != CLOCK_TOPIC)
    control_start = {tp: worker.resume[tp] for tp in control_tps if tp in worker.resume}
    control: list[AIOKafkaConsumer] = []  # the broadcast reader's consumer, once started
    #: a client that only asks for end offsets: on the reader's own connection the question
    #: would wait behind its pending fetch (up to FETCH_MAX_WAIT_MS each time)
    asker: list[AIOKafkaConsumer] = []
    reader_ready = asyncio.Event()  # set once the broadcast reader is positioned

    def note_highwaters() -> None:
        """What the broker holds beyond what we read, per low-volume partition (see
        Pipeline.set_backlog): the watermark waits until we have read it. From the reader's
        latest fetch responses (no request)."""
        if not control:
            return
        marks = {}
        for tp in control[0].assignment():
            hw = control[0].highwater(tp)
            if hw is not None:
                marks[(tp.topic, tp.partition)] = int(hw)
        worker.pipeline.set_backlog(marks)

    async def ask_control_ends() -> None:
        """Before a tick closes: ask the broker where the low-volume partitions end now.

        The telemetry in hand was produced after every low-volume event the broker holds now
        (when the producer orders them so: sim.producer), so once the reader has read to these
        ends no tick closes without an event that belongs in it -- however far the telemetry
        consumer runs ahead of the reader (a simulator faster than real time, a backlog).
        Falls back to the reader's last fetch responses if the broker does not answer.

        Waits for the broadcast reader to start first: telemetry can arrive before it has, and
        a tick closed then would miss the topology and the jobs."""
        if not reader_ready.is_set():
            try:
                await asyncio.wait_for(reader_ready.wait(), READER_START_TIMEOUT_S)
            except TimeoutError:
                log.warning("the low-volume reader has not started after %.0f s; closing the "
                            "tick without asking where those topics end", READER_START_TIMEOUT_S)
        if not control or not asker:
            return
        try:
            ends = await asker[0].end_offsets(list(control[0].assignment()))
        except KafkaError as exc:
            log.warning("could not ask the broker for the low-volume ends: %r", exc)
            note_highwaters()
            return
        worker.pipeline.set_backlog({(tp.topic, tp.partition): int(o) for tp, o in ends.items()})

    async def consume(stream: Any) -> None:
        async for events in stream.take_events(cfg.take_max, within=cfg.take_within_s):
            async with lock:  # one batch at a time through the fold
                note_highwaters()
                await worker.on_records(_records(events), ask_control_ends)

    commit_timer = delivery.CommitTimer()

    async def on_batch(records: list[Record]) -> None:
        """A whole fetch of telemetry (``delivery = "batch"``, :mod:`streams.delivery`)."""
        async with lock:
            note_highwaters()
            await worker.on_records(records, ask_control_ends)
        if commit_timer.due():
            await commit_read_positions()

    async def commit_read_positions() -> None:
        """What the agent path's acks amount to: the position after the last record handed to
        the worker, per telemetry partition held (batch delivery acks nothing through Faust)."""
        consumer: Any = app.consumer
        read = worker.pipeline.next_offsets
        positions = {
            tp: read[(tp.topic, tp.partition)]
            for tp in consumer.assignment()
            if (tp.topic, tp.partition) in read and tp.topic == CLOCK_TOPIC
        }
        if not await consumer.commit_positions(positions):
            log.warning("could not commit the read positions %s", positions)

    if batch:
        app.topics.add(gpu_topic)  # subscribed; records go to on_batch, not to an agent
    else:
        app.agent(gpu_topic, name="telemetry")(consume)

    @app.task  # type: ignore[untyped-decorator]
    async def _broadcast_reader() -> None:
        """Every partition of the low-volume topics, from the snapshot's offsets (else the
        start of the log), with a group-less consumer: each worker of a group folds them all."""
        consumer = AIOKafkaConsumer(
            **settings.aiokafka_kwargs(bootstrap),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        ends_client = AIOKafkaConsumer(
            **settings.aiokafka_kwargs(bootstrap), group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            await ends_client.start()
            asker.append(ends_client)
            tps = [AIOTopicPartition(t, p) for t, p in control_tps]
            consumer.assign(tps)
            for tp in tps:
                at = control_start.get((tp.topic, tp.partition))
                if at is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, at)
            control.append(consumer)
            reader_ready.set()
            while True:
                got = await consumer.getmany(timeout_ms=200, max_records=cfg.take_max)
                records = [
                    Record(m.topic, m.partition, m.offset, m.key, m.value)
                    for msgs in got.values()
                    for m in msgs
                ]
                if records:
                    async with lock:
                        note_highwaters()
                        await worker.on_records(records)
        finally:
            reader_ready.clear()
            control.clear()
            asker.clear()
            await ends_client.stop()
            await consumer.stop()

    first_assignment: list[bool] = []

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
        """Take the telemetry partitions Kafka assigned (a --partial worker's racks follow from
        them). The fold is synchronous, so this cannot land in the middle of a batch."""
        held = sorted(tp.partition for tp in assigned if tp.topic == CLOCK_TOPIC)
        worker.assign(held, telemetry_total)
        if not first_assignment:
            first_assignment.append(True)
            if batch:
                consumer: Any = app.consumer
                consumer.on_batch = on_batch
            if not _shorten_fetch_wait(app):
                log.warning("could not shorten the consumer's fetch wait (Faust internals changed)")

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _position(sender: Any, **_: Any) -> None:
        """Position each telemetry partition, the first time it is assigned, where the snapshot
        (or ``--fresh``) says; the position is then used up.

        Faust seeks every assigned partition to the group's committed offset right after this
        signal (``Recovery._resume_streams``: the signal is awaited, then ``perform_seek``), so
        the positions are *committed* for the group (by this member, which the broker accepts)
        and Faust's own seek lands on them. Records fetched before are skipped by the pipeline
        (see Pipeline.known_offsets). A partition assigned again later (another worker joined
        or left) continues from the group's committed offsets."""
        positions = {
            tp: worker.resume.pop((tp.topic, tp.partition))
            for tp in app.consumer.assignment()
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

    if cfg.idle_exit_s is not None:
        idle = cfg.idle_exit_s
        stopping: list[bool] = []

        def time_to_stop() -> bool:
            """Whoever feeds the topics is done and every partition has been read to where
            it ended (``worker.stop_at``), or ``idle`` seconds passed without a record for a
            standalone worker (a consumer can pause for seconds, so a feeder's run never
            relies on the wall clock alone)."""
            if worker.stop_file is not None and worker.stop_at is None:
                worker.stop_at = read_stop_file(worker.stop_file)
                if worker.stop_at is None:
                    return False  # the feeder has not said where the input ends yet
            if worker.input_done is not None and not worker.input_done.is_set():
                return False
            if worker.telemetry_held is None:
                return False  # not in the group yet (a dead predecessor's session may hold it)
            quiet = time.monotonic() - worker.stats.last_record
            if worker.stop_at is not None:
                if not worker.caught_up():
                    if quiet < max(idle, 120.0):
                        return False
                    log.warning("stopping %.0f s after the last record, not caught up", quiet)
            elif quiet < idle:
                return False
            # a standalone worker waits for its first record
            return worker.stats.records > 0 or worker.input_done is not None

        @app.timer(interval=min(1.0, idle / 2))  # type: ignore[untyped-decorator]
        async def _stop_when_idle() -> None:
            """Stop a finite run (``time_to_stop``): close and publish the open ticks first."""
            if stopping or not time_to_stop():
                return
            stopping.append(True)
            async with lock:
                await worker.emit(worker.flush())
            if batch:
                await commit_read_positions()
            log.info("input done and read: stopping")
            os.kill(os.getpid(), signal.SIGTERM)

    return app


def run_faust(app: faust.App, log_level: str = "warn") -> None:
    """Run a Faust worker for ``app`` in this thread until it stops (signal or idle exit).

    Returns normally; Faust's own SystemExit at the end is absorbed. No terminal spinner."""
    # stdout/stderr stay ours (Faust would route them into its logger at its own level)
    worker = faust.Worker(app, loglevel=log_level, quiet=True, redirect_stdouts=False)
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
