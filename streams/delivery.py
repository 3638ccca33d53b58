"""Batch delivery: Faust's Kafka consumer drained a fetch at a time, straight into the twin.

Faust hands every record to its streams one at a time: ``Consumer._drain_messages`` awaits the
conductor's callback per record (an ``Event``, a channel queue, acks), about 4 asyncio tasks
and 11 loop callbacks per record, on the event-loop thread that also runs the fold. On the full
facility that caps one worker near 5,000 records/s before anything is decoded
(bench/RESULTS.md). With ``delivery = "batch"`` the app uses :class:`Transport`, whose
:class:`Consumer` keeps everything of Faust's aiokafka driver -- the consumer group and its
assignor, rebalances and their signals, the seek to committed offsets, flow control during a
rebalance, the fetching in the driver's own thread -- and replaces only that last step: each
fetch's telemetry records go to one coroutine as one list (:attr:`Consumer.on_batch`).

Nothing is acked through Faust's streams, so Faust commits nothing by itself; the app commits
the worker's read positions (:meth:`Consumer.commit_positions`) after each batch, at most every
``commit_every_s``, which is what the agent path's acks amount to (the position after the last
record handed to the worker). Recovery does not depend on them: it seeks to the snapshot's
offsets (:mod:`streams.app`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, get_args

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.pipeline import Record
from streams.settings import Delivery

__all__ = ["DELIVERIES", "SCHEME", "Consumer", "Transport", "install"]

#: How records reach the twin: Faust agent streams (``stream.take_events``) or whole fetches.
DELIVERIES: tuple[str, ...] = get_args(Delivery)
#: URL scheme of :class:`Transport` in Faust's transport registry (``broker_consumer``).
SCHEME = "twinbatch"

OnBatch = Callable[[list[Record]], Awaitable[None]]


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, each fetch delivered as one list of :class:`Record`."""

    #: the twin's batch handler; set by ``make_app`` before the app starts
    on_batch: OnBatch | None = None
    #: seconds between commits of the read positions
    commit_every_s: ClassVar[float] = 2.8

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (``Consumer._drain_messages``) without the per-record dispatch."""
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                records, active = await self._wait_next_records(1.0)
                generation = self.app.consumer_generation_id
                await asyncio.sleep(0)  # never starve the loop (timers, rebalance signals)
                if not records or self.should_stop or not self.flow_active:
                    continue
                batch: list[Record] = []
                for tp, recs in records.items():
                    if active is not None and tp not in active and (
                        tp not in self._buffered_partitions
                    ):
                        continue
                    last = read_offset.get(tp)
                    for r in recs:
                        if last is None or r.offset >= last:
                            batch.append(Record(r.topic, r.partition, r.offset, r.key, r.value))
                    if recs:
                        read_offset[tp] = max(recs[-1].offset, last or 0)
                if not batch or self.app.consumer_generation_id != generation:
                    continue  # a rebalance began: Faust seeks again, the records come again
                handler = self.on_batch
                if handler is None:
                    raise RuntimeError("batch delivery: no handler set (make_app sets it)")
                await handler(batch)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def commit_positions(self, positions: Mapping[TP, int]) -> bool:
        """Commit these positions (the next offset to read) for the group."""
        if not positions:
            return True
        return bool(await self._commit(positions))


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`Consumer` (see the module docstring)."""

    Consumer = Consumer


def install() -> None:
    """Register :class:`Transport` as ``twinbatch://`` in Faust's transport registry."""
    TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")


class CommitTimer:
    """Commit a consumer's positions at most every ``every_s`` seconds."""

    def __init__(self, every_s: float = Consumer.commit_every_s) -> None:
        self.every_s = every_s
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return False
        self._last = now
        return True
