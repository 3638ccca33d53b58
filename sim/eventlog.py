"""The event-log file: the simulator's Kafka records, in order, for offline replay and benchmarks.

Format (all integers little-endian)::

    file    := magic record*
    magic   := b"TWINLOG1"                      8 bytes
    record  := topic_len:u16 key_len:u16 value_len:u32 topic key value
    topic   := topic_len bytes, UTF-8 (e.g. "facility.gpu")
    key     := key_len bytes; key_len = 0xFFFF means no key (None)
    value   := value_len bytes (the JSON event, exactly as it would be produced to Kafka)

A file ends at a record boundary; a truncated last record raises :class:`EventLogError`. Records
are what :func:`sim.run.simulate` hands to any sink, so replaying a file into Kafka or a twin
gives the same bytes as a live run with the same scenario and seed.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Final

__all__ = ["MAGIC", "EventLogError", "EventLogWriter", "read_eventlog"]

MAGIC: Final = b"TWINLOG1"
_HEADER: Final = struct.Struct("<HHI")
_NO_KEY: Final = 0xFFFF
_IOV_MAX: Final = 1024
_HAS_WRITEV: Final = hasattr(os, "writev")


class EventLogError(ValueError):
    """Not an event-log file, or a damaged one."""


class EventLogWriter:
    """Appends records to a new event-log file. A context manager; also a simulator sink.

    Each :meth:`write` hands the kernel all its headers and values with ``os.writev`` (no
    joined copy, no Python-level buffering), 1,024 buffers per call."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.records = 0
        self.bytes = 0
        self._topics: dict[str, bytes] = {}
        self._write_all([MAGIC])

    def _write_all(self, parts: list[bytes]) -> None:
        if self._fd is None:
            raise EventLogError(f"{self.path}: writer is closed")
        for i in range(0, len(parts), _IOV_MAX):
            chunk = parts[i : i + _IOV_MAX]
            want = sum(map(len, chunk))
            done = (
                os.writev(self._fd, chunk) if _HAS_WRITEV else os.write(self._fd, b"".join(chunk))
            )
            if done < want:  # a short write: finish the rest plainly
                rest = b"".join(chunk)[done:]
                while rest:
                    rest = rest[os.write(self._fd, rest) :]
            self.bytes += want

    def write(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        pack = _HEADER.pack
        topics = self._topics
        parts: list[bytes] = []
        append = parts.append
        count = 0
        for topic, key, value in records:
            t = topics.get(topic)
            if t is None:
                t = topics[topic] = topic.encode()
            if key is None:
                append(pack(len(t), _NO_KEY, len(value)))
                append(t)
            else:
                if len(key) >= _NO_KEY:
                    raise EventLogError(f"key of {len(key)} bytes is too long (max 65534)")
                append(pack(len(t), len(key), len(value)))
                append(t)
                append(key)
            append(value)
            count += 1
        self._write_all(parts)
        self.records += count

    def flush(self) -> None:
        """Nothing is buffered in Python; the data is with the kernel after each write."""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> EventLogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_eventlog(path: str | Path) -> Iterator[tuple[str, bytes | None, bytes]]:
    """Yield ``(topic, key, value)`` for every record of the file, in order."""
    p = Path(path)
    with p.open("rb") as fh:
        size = p.stat().st_size
        if size < len(MAGIC) or fh.read(len(MAGIC)) != MAGIC:
            raise EventLogError(f"{p}: not an event-log file (no {MAGIC!r} header)")
        if size == len(MAGIC):
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            view = memoryview(buf)
            try:
                yield from _records(view, size, p)
            finally:
                view.release()


def _records(view: memoryview, size: int, p: Path) -> Iterator[tuple[str, bytes | None, bytes]]:
    pos = len(MAGIC)
    unpack = _HEADER.unpack_from
    hsize = _HEADER.size
    topics: dict[bytes, str] = {}
    while pos < size:
        if pos + hsize > size:
            raise EventLogError(f"{p}: truncated record header at byte {pos}")
        tlen, klen, vlen = unpack(view, pos)
        pos += hsize
        end = pos + tlen + (0 if klen == _NO_KEY else klen) + vlen
        if end > size:
            raise EventLogError(f"{p}: truncated record at byte {pos - hsize}")
        tb = bytes(view[pos : pos + tlen])
        topic = topics.get(tb)
        if topic is None:
            topic = topics[tb] = tb.decode()
        pos += tlen
        key: bytes | None = None
        if klen != _NO_KEY:
            key = bytes(view[pos : pos + klen])
            pos += klen
        value = bytes(view[pos : pos + vlen])
        pos += vlen
        yield topic, key, value
