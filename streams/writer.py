"""The one DuckDB writer: a thread that owns the write connection, fed through a queue.

Event-loop code never touches DuckDB. It submits *operations*: callables that receive the
connection and run inside the writer thread, each in its own transaction. ``submit`` returns a
:class:`concurrent.futures.Future`; ``aqueue`` queues from the event loop without waiting for
the operation to run. A full queue applies back-pressure: ``aqueue`` waits for room in a worker
thread, never in the loop.

Analysts get read-only connections elsewhere (:func:`connect_read_only`); DuckDB allows one
read-write process per file, so while a worker writes, other processes read the file only after
it closes (or read the Parquet export).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar, cast

import duckdb

__all__ = ["DuckDBWriter", "WriterClosedError", "connect_read_only"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[duckdb.DuckDBPyConnection], Any]

_STOP = object()


class WriterClosedError(RuntimeError):
    """The writer was closed, or its thread died; the operation did not run."""


def connect_read_only(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection for analysts; a clear error if the file does not exist."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no DuckDB file at {p}: run the twin first (make demo)")
    return duckdb.connect(str(p), read_only=True)


class DuckDBWriter:
    """Single owner of the DuckDB write connection.

    ``ddl`` statements run once when the thread starts (``CREATE TABLE IF NOT EXISTS ...``).
    Each submitted operation runs in ``BEGIN ... COMMIT``; on error it is rolled back and the
    exception is set on its future (the writer keeps running).
    """

    def __init__(
        self, path: Path | str, *, ddl: Sequence[str] = (), max_queue: int = 64
    ) -> None:
        self.path = Path(path)
        self._ddl = tuple(ddl)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> DuckDBWriter:
        if self._thread is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="duckdb-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error
        return self

    def close(self, timeout: float = 60.0) -> None:
        """Drain the queue, run every pending operation, close the connection."""
        if self._thread is None or self._closed:
            self._closed = True
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("DuckDB writer did not finish within %.0f s", timeout)

    def __enter__(self) -> DuckDBWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # submitting ------------------------------------------------------------------------------
    def submit(self, op: Callable[[duckdb.DuckDBPyConnection], T]) -> Future[T]:
        """Queue ``op``; blocks the *calling thread* while the queue is full."""
        if self._closed or self._thread is None or not self._thread.is_alive():
            raise WriterClosedError("the DuckDB writer is not running")
        fut: Future[T] = Future()
        self._queue.put((op, fut))
        return fut

    async def aqueue(self, op: Callable[[duckdb.DuckDBPyConnection], T]) -> Future[T]:
        """Queue ``op`` from the event loop without waiting for it to run: waits (in a worker
        thread, never the loop) only while the queue is full. The future tells how it went."""
        if self._queue.full():
            return await asyncio.to_thread(self.submit, op)
        return self.submit(op)

    def run(self, op: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Queue ``op`` and wait for it (for synchronous callers, never the event loop)."""
        return self.submit(op).result()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    # the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            con = duckdb.connect(str(self.path))
            for stmt in self._ddl:
                con.execute(stmt)
        except BaseException as exc:  # surfaced to start()
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                op, fut = cast("tuple[Operation, Future[Any]]", item)
                if not fut.set_running_or_notify_cancel():
                    continue
                try:
                    con.execute("BEGIN TRANSACTION")
                    result = op(con)
                    con.execute("COMMIT")
                except BaseException as exc:
                    with contextlib.suppress(duckdb.Error):
                        con.execute("ROLLBACK")
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
        finally:
            con.close()
            # fail whatever is still queued so nobody waits forever
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    _, pending = cast("tuple[Operation, Future[Any]]", item)
                    pending.set_exception(WriterClosedError("the DuckDB writer stopped"))
