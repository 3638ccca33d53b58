"""Fast encoding of ``gpu_telemetry``: one JSON message per rack per interval, or (scenario
``telemetry.format = "binary"``) one binary message per rack per ``readings_per_message``
intervals, carrying the same quantized numbers (:class:`RackBinaryEncoder`).

About 3,400 racks x 64-72 GPUs per simulated second make this the simulator's hot path, and
formatting ~2 million floats a second is what costs. So numbers are formatted by table lookup,
all GPUs of a column at once, into fixed-width fields:

* every column is quantized to what DCGM reports (0.1 W, whole degrees and MHz, four decimals
  for activity fractions, whole MB for NVLink bytes) and turned into text by indexing a
  precomputed table of its ASCII renderings (``table[value]`` -> an ``(n, width)`` byte matrix);
* each field is 4 or 8 bytes (the number right-aligned with spaces, JSON allows whitespace around
  values, then a comma), so a table is one unsigned integer per entry and rendering a column is
  a single 1-D gather; every rack's message body has a fixed layout: racks of one size share a
  2D byte buffer whose column blocks are filled with one strided copy per column;
* everything constant per rack (envelope, ``gpu_index``, ``gpu_uuid``) is a byte prefix built
  once; the ``jobs`` dictionary is cached per rack and rebuilt only when a rack's jobs change.

A message is then ``prefix + ts/seq + jobs + body`` joined from bytes: valid, compact enough JSON
that any parser (and the pydantic models) read back to the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson

from schemas.binary import HEADER, LAYOUT_VERSION, MAGIC, TELEMETRY_CODE
from sim.records import FACILITY_GPU, Record
from sim.topology import Topology
from twin.gpus import MODEL_NAMES

__all__ = ["TELEMETRY_COLUMNS", "RackBinaryEncoder", "RackTelemetryEncoder", "format_fixed"]

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

_OPTS: Final = orjson.OPT_SERIALIZE_NUMPY
_COMMA: Final = ord(",")
_CLOSE: Final = ord("]")


def _table(texts: list[str], nbytes: int) -> npt.NDArray[np.unsignedinteger]:
    """Each text right-aligned and followed by a comma in ``nbytes`` (4 or 8) bytes, viewed as
    one unsigned integer per entry, so a whole column renders with one 1-D gather."""
    raw = b"".join(t.rjust(nbytes - 1).encode() + b"," for t in texts)
    if len(raw) != len(texts) * nbytes:
        raise ValueError(f"a text is longer than {nbytes - 1} characters")
    if nbytes == 4:
        return np.frombuffer(raw, dtype=np.uint32).copy()
    return np.frombuffer(raw, dtype=np.uint64).copy()


@dataclass(frozen=True, slots=True)
class _Column:
    """How one column is quantized: ``code = rint(value * scale) + offset``, clipped to the
    table, rendered by ``table[code]``."""

    name: str
    scale: float
    offset: int
    table: npt.NDArray[np.unsignedinteger]

    @property
    def width(self) -> int:
        return int(self.table.itemsize)


def _fraction_column(name: str) -> _Column:
    return _Column(name, 1e4, 0, _table([f"{v / 1e4:.4f}" for v in range(10_001)], 8))


def _int_column(name: str, lo: int, hi: int, nbytes: int) -> _Column:
    return _Column(name, 1.0, -lo, _table([str(v) for v in range(lo, hi + 1)], nbytes))


#: Columns in wire order (nvlink_bytes, job_slot and xid are formatted separately).
_COLUMNS: Final = (
    _Column("power_w", 10.0, 0, _table([f"{v / 10:.1f}" for v in range(18_001)], 8)),
    _int_column("temp_c", -20, 130, 4),
    _int_column("memory_temp_c", -20, 150, 4),
    _int_column("sm_clock_mhz", 0, 5000, 8),
    _int_column("gpu_util_pct", 0, 100, 4),
    _fraction_column("sm_active"),
    _fraction_column("tensor_active"),
    _fraction_column("dram_active"),
)

#: The changing columns the emitter fills (float64 physical values, ints for the rest).
TELEMETRY_COLUMNS: Final = (
    *(c.name for c in _COLUMNS),
    "nvlink_bytes",
    "job_slot",
    "xid",
)

_SLOT: Final = _int_column("job_slot", -1, 99, 4)
_XID: Final = _int_column("xid", 0, 999, 4)
# NVLink bytes = whole MB x 10^6, rendered as 16 bytes: [MB // 10^4][MB % 10^4]["000000 ,"]
_SP4: Final = np.frombuffer(b"".join(str(v).rjust(4).encode() for v in range(10_000)), np.uint32)
_PAD4: Final = np.frombuffer(b"".join(f"{v:04d}".encode() for v in range(10_000)), np.uint32)
_BLANK4: Final = np.frombuffer(b"    ", np.uint32)[0]
_MB_SUFFIX: Final = np.frombuffer(b"000000 ,", np.uint64)[0]
_ZERO_SUFFIX: Final = np.frombuffer(b"       ,", np.uint64)[0]


def format_fixed(codes: I64, table: npt.NDArray[np.unsignedinteger]) -> U8:
    """The fixed-width renderings of integer codes (already clipped), as raw bytes (n, width)."""
    out: U8 = table[codes].view(np.uint8).reshape(codes.shape[0], table.itemsize)
    return out


class _Scratch:
    """Preallocated work arrays: the hot path allocates nothing per interval (fresh multi-MB
    temporaries cost page faults that dwarf the arithmetic)."""

    def __init__(self, n: int) -> None:
        self.f = np.empty(n)
        self.codes = np.empty(n, dtype=np.int64)
        self.hi = np.empty(n, dtype=np.int64)
        self.big = np.empty(n, dtype=bool)
        self.t32 = np.empty(n, dtype=np.uint32)
        self.t64 = np.empty(n, dtype=np.uint64)
        self.u64 = np.empty(n, dtype=np.uint64)
        self.mb = np.empty((n, 2), dtype=np.uint64)

    def quantize(self, values: F64, perm: I64, scale: float, offset: float, top: int) -> I64:
        """``clip(rint(values[perm] * scale) + offset, 0, top)`` into :attr:`codes`."""
        f = self.f
        np.take(values, perm, out=f)
        f *= scale
        f += offset + 0.5
        np.clip(f, 0.0, top + 0.25, out=f)
        np.copyto(self.codes, f, casting="unsafe")  # truncation of non-negatives = floor
        return self.codes

    def render(self, codes: I64, table: npt.NDArray[np.unsignedinteger]) -> U8:
        out = self.t32 if table.dtype == np.uint32 else self.t64
        np.take(table, codes, out=out)
        return out.view(np.uint8)

    def render_mb(self, mb: I64) -> U8:
        """Whole megabytes -> "<MB>000000 ," right-aligned in 16 bytes (exact); 0 -> "0"."""
        hi, big, t32, u64, out = self.hi, self.big, self.t32, self.u64, self.mb
        np.floor_divide(mb, 10_000, out=hi)
        np.greater(hi, 0, out=big)
        np.take(_SP4, hi, out=t32)
        t32[~big] = _BLANK4
        np.copyto(out[:, 0], t32)
        np.remainder(mb, 10_000, out=hi)
        np.take(_SP4, hi, out=t32)
        np.copyto(u64, t32)
        np.take(_PAD4, hi, out=t32)
        np.copyto(u64, t32, where=big)
        u64 <<= np.uint64(32)
        out[:, 0] |= u64
        out[:, 1] = _MB_SUFFIX
        out[mb == 0, 1] = _ZERO_SUFFIX
        result: U8 = out.view(np.uint8)
        return result


class _Group:
    """Racks of one size: a byte buffer with one row per rack, one block per column."""

    def __init__(self, racks: list[int], size: int, gpu_index: I64) -> None:
        self.racks = racks
        self.gpus = gpu_index  # (len(racks) * size,) GPU indices, rack-major
        self.size = size
        self.blocks: dict[str, tuple[int, int]] = {}  # name -> (start, end) in a row
        pos = 0
        labels: list[tuple[int, bytes]] = []
        names = [(c.name, c.width) for c in _COLUMNS]
        names += [("nvlink_bytes", 16), ("job_slot", _SLOT.width), ("xid", _XID.width)]
        for i, (name, width) in enumerate(names):
            label = (b"" if i == 0 else b",") + f'"{name}":['.encode()
            labels.append((pos, label))
            pos += len(label)
            self.blocks[name] = (pos, pos + size * width)
            pos += size * width
        labels.append((pos, b"}"))
        pos += 1
        self.buf = np.zeros((len(racks), pos), dtype=np.uint8)
        for start, label in labels:
            self.buf[:, start : start + len(label)] = np.frombuffer(label, dtype=np.uint8)

    def fill(self, name: str, text: U8) -> None:
        """Copy the rendered column (bytes for ``self.gpus``) into its block; close the list."""
        start, end = self.blocks[name]
        self.buf[:, start:end] = text.reshape(len(self.racks), end - start)
        self.buf[:, end - 1] = _CLOSE


class RackTelemetryEncoder:
    """Holds the column buffers; :meth:`encode` turns their current contents into records."""

    def __init__(self, topo: Topology, interval_ns: int) -> None:
        self.topo = topo
        n = topo.n_gpus
        self.columns: dict[str, npt.NDArray[np.float64]] = {c.name: np.zeros(n) for c in _COLUMNS}
        self.columns["nvlink_bytes"] = np.zeros(n)
        self.job_slot: I32 = np.full(n, -1, dtype=np.int32)
        self.xid: I32 = np.zeros(n, dtype=np.int32)
        offsets = topo.rack_offsets
        self._bounds = [(int(offsets[r]), int(offsets[r + 1])) for r in range(topo.n_racks)]
        self.keys = [rid.encode() for rid in topo.rack_ids]
        self._prefix = self._prefixes(topo, interval_ns)
        by_size: dict[int, list[int]] = {}
        for r, (lo, hi) in enumerate(self._bounds):
            by_size.setdefault(hi - lo, []).append(r)
        self._groups = [
            _Group(racks, size, np.concatenate([np.arange(*self._bounds[r]) for r in racks]))
            for size, racks in sorted(by_size.items())
        ]
        self._perm = np.concatenate([g.gpus for g in self._groups])
        self._scratch = _Scratch(n)
        self._slots_dirty = True
        ends = np.cumsum([g.gpus.shape[0] for g in self._groups]).tolist()
        self._spans = list(zip([0, *ends[:-1]], ends, strict=True))
        self._row = [(0, 0)] * topo.n_racks  # rack -> (group, row)
        for g, group in enumerate(self._groups):
            for row, r in enumerate(group.racks):
                self._row[r] = (g, row)
        self._jobs_frag = [b'"jobs":[],'] * topo.n_racks
        self.rack_jobs: list[list[str]] = [[] for _ in range(topo.n_racks)]
        self._jobs_changed: set[int] = set()
        # views of each rack's row in its group buffer: stable, the buffers are reused
        self._bodies = [memoryview(self._groups[g].buf[row]) for g, row in self._row]

    def _prefixes(self, topo: Topology, interval_ns: int) -> list[bytes]:
        n = topo.n_gpus
        quoted = np.empty((n, 43), dtype=np.uint8)
        quoted[:, 0] = ord('"')
        quoted[:, 1:41] = topo.gpu_uuid
        quoted[:, 41] = ord('"')
        quoted[:, 42] = _COMMA
        index = np.arange(n, dtype=np.int64)
        out: list[bytes] = []
        for r, (lo, hi) in enumerate(self._bounds):
            rid = topo.rack_ids[r]
            head = orjson.dumps(
                {
                    "event_type": "gpu_telemetry",
                    "schema_version": 1,
                    "source_id": f"dcgm/{rid}",
                    "rack_id": rid,
                    "gpu_model": MODEL_NAMES[int(topo.rack_model[r])],
                    "interval_ns": interval_ns,
                    "gpu_index": index[lo:hi],
                },
                option=_OPTS,
            )
            uuids = b"[" + quoted[lo:hi].tobytes()[:-1] + b"]"
            out.append(head[:-1] + b',"gpu_uuid":' + uuids + b',"ts_ns":')
        return out

    def source_id(self, rack: int) -> str:
        return f"dcgm/{self.topo.rack_ids[rack]}"

    def set_jobs(self, racks: I64, gpu_job: I32, job_ids: list[str]) -> None:
        """Rebuild the ``jobs`` dictionary and ``job_slot`` of ``racks`` from job codes."""
        for r in racks.tolist():
            lo, hi = self._bounds[r]
            uniq, inverse = np.unique(gpu_job[lo:hi], return_inverse=True)
            names = [job_ids[c] for c in uniq.tolist() if c >= 0]
            slots = inverse.astype(np.int32)
            if uniq[0] < 0:
                slots -= 1
            self.job_slot[lo:hi] = slots
            self._jobs_frag[r] = orjson.dumps({"jobs": names})[1:-1] + b","
            self.rack_jobs[r] = names
            self._jobs_changed.add(r)
        self._slots_dirty = True

    def jobs_changed_racks(self) -> list[int]:
        """Racks whose ``jobs`` changed since the last call (in rack order)."""
        out = sorted(self._jobs_changed)
        self._jobs_changed.clear()
        return out

    def set_xid(self, xid: I32) -> None:
        self.xid[:] = xid
        self._slots_dirty = True

    def _fill(self, name: str, text: U8) -> None:
        width = text.shape[0] // self.topo.n_gpus
        for group, (a, b) in zip(self._groups, self._spans, strict=True):
            group.fill(name, text[a * width : b * width])

    def _render(self) -> None:
        sc, perm = self._scratch, self._perm
        for col in _COLUMNS:
            top = col.table.shape[0] - 1
            codes = sc.quantize(self.columns[col.name], perm, col.scale, col.offset, top)
            self._fill(col.name, sc.render(codes, col.table))
        mb = sc.quantize(self.columns["nvlink_bytes"], perm, 1e-6, 0, 99_999_999)
        self._fill("nvlink_bytes", sc.render_mb(mb))
        if self._slots_dirty:  # job_slot and xid change only with jobs and failures
            top = _SLOT.table.shape[0] - 1
            slot = sc.quantize(self.job_slot.astype(np.float64), perm, 1.0, 1, top)
            self._fill("job_slot", sc.render(slot, _SLOT.table))
            top = _XID.table.shape[0] - 1
            xid = sc.quantize(self.xid.astype(np.float64), perm, 1.0, 0, top)
            self._fill("xid", sc.render(xid, _XID.table))
            self._slots_dirty = False

    def encode(self, ts_ns: int, seq: int) -> list[Record]:
        """One record per rack from the buffers' current contents."""
        self._render()
        tail = str(ts_ns).encode() + b',"seq":' + str(seq).encode() + b","
        join = b"".join
        topic = FACILITY_GPU
        return [
            (topic, key, join((prefix, tail, jobs, body)))
            for key, prefix, jobs, body in zip(
                self.keys, self._prefix, self._jobs_frag, self._bodies, strict=True
            )
        ]


def _quantize(values: F64, col: _Column) -> F64:
    """The value a JSON reader gets back from :class:`RackTelemetryEncoder`'s text for
    ``values`` (same arithmetic as ``_Scratch.quantize``, then the code back to the value)."""
    top = col.table.shape[0] - 1
    f = values * col.scale
    f += col.offset + 0.5
    np.clip(f, 0.0, top + 0.25, out=f)
    codes = f.astype(np.int64)  # truncation of non-negatives = floor
    if col.scale == 1.0:  # integer columns: exact
        out: F64 = (codes - col.offset).astype(np.float64)
        return out
    quotient: F64 = (codes - col.offset) / col.scale  # as the text's decimal parses back
    return quotient


class RackBinaryEncoder:
    """``gpu_telemetry`` in the binary layout (:mod:`schemas.binary`): one record per rack per
    ``k`` readings. :meth:`add` buffers one reading of every GPU (quantized exactly as the JSON
    text is, so both formats carry the same numbers); it returns the records once ``k`` readings
    are in, and :meth:`flush` returns a last, shorter message at the end of a run.

    A message's ``jobs`` dictionary is the rack's dictionary at its first reading, extended by
    the job ids later readings add; ``job_slot`` is remapped to it."""

    def __init__(self, topo: Topology, text: RackTelemetryEncoder, k: int) -> None:
        self.topo = topo
        self.text = text  # holds the column buffers, job slots, xids and rack job names
        self.k = k
        n = topo.n_gpus
        offsets = topo.rack_offsets
        self._bounds = [(int(offsets[r]), int(offsets[r + 1])) for r in range(topo.n_racks)]
        self._f32 = np.zeros((8, k, n), np.float32)
        self._nvlink = np.zeros((k, n), np.float64)
        self._xid = np.zeros((k, n), np.int32)
        self._slot = np.zeros((k, n), np.int32)
        self._ts: list[int] = []
        self._interval: list[int] = []
        self._seq = 0
        self._jobs: list[list[str]] = [[] for _ in range(topo.n_racks)]
        self._remap: dict[int, I32] = {}  # rack -> rack slot + 1 -> message slot
        self._head = [
            (f"dcgm/{rid}".encode(), rid.encode(), MODEL_NAMES[int(topo.rack_model[r])].encode())
            for r, rid in enumerate(topo.rack_ids)
        ]
        self._uuids = [bytes(topo.gpu_uuid[lo:hi].tobytes()) for lo, hi in self._bounds]
        self._uuid_len = int(topo.gpu_uuid.shape[1])
        self._gpu_index = [np.arange(lo, hi, dtype="<i4").tobytes() for lo, hi in self._bounds]

    def add(self, ts_ns: int, interval_ns: int, seq: int) -> list[Record]:
        """Buffer the text encoder's current columns as one reading; the records when full."""
        r = len(self._ts)
        text = self.text
        if r == 0:
            self._seq = seq
            self._jobs = [list(j) for j in text.rack_jobs]
            self._remap = {}
        cols = text.columns
        for c, col in enumerate(_COLUMNS):
            self._f32[c, r] = _quantize(cols[col.name], col)
        f = cols["nvlink_bytes"] * 1e-6  # whole MB, as the JSON text (render_mb)
        f += 0.5
        np.clip(f, 0.0, 99_999_999.25, out=f)
        np.multiply(f.astype(np.int64), 1e6, out=self._nvlink[r])
        self._xid[r] = _quantize(text.xid.astype(np.float64), _XID)
        slot = _quantize(text.job_slot.astype(np.float64), _SLOT).astype(np.int32)
        for rack in text.jobs_changed_racks():
            names = text.rack_jobs[rack]
            if names == self._jobs[rack] and rack not in self._remap:
                continue
            msg = self._jobs[rack]
            remap = np.array([-1] + [self._index(msg, j) for j in names], np.int32)
            self._remap[rack] = remap
        for rack, remap in self._remap.items():
            lo, hi = self._bounds[rack]
            slot[lo:hi] = remap[slot[lo:hi] + 1]
        self._slot[r] = slot
        self._ts.append(ts_ns)
        self._interval.append(interval_ns)
        return self.flush() if len(self._ts) == self.k else []

    @staticmethod
    def _index(names: list[str], job: str) -> int:
        if job not in names:
            names.append(job)
        return names.index(job)

    def flush(self) -> list[Record]:
        """The buffered readings as one record per rack (none if nothing is buffered)."""
        k = len(self._ts)
        if k == 0:
            return []
        ts = np.asarray(self._ts, "<i8").tobytes()
        interval = np.asarray(self._interval, "<i8").tobytes()
        out: list[Record] = []
        join = b"".join
        for rack, (lo, hi) in enumerate(self._bounds):
            n = hi - lo
            src, rid, model = self._head[rack]
            jobs = [j.encode() for j in self._jobs[rack]]
            lens = [len(src), len(rid), len(model), *map(len, jobs)]
            head_ends = np.cumsum(lens)
            uuid_ends = int(head_ends[-1]) + self._uuid_len * np.arange(1, n + 1)
            header = HEADER.pack(
                MAGIC, LAYOUT_VERSION, TELEMETRY_CODE, 1, self._seq, n, k, len(jobs), 0
            )
            out.append(
                (
                    FACILITY_GPU,
                    self.text.keys[rack],
                    join(
                        (
                            header,
                            ts,
                            interval,
                            self._nvlink[:k, lo:hi].tobytes(),
                            self._gpu_index[rack],
                            self._f32[:, :k, lo:hi].tobytes(),
                            self._xid[:k, lo:hi].tobytes(),
                            self._slot[:k, lo:hi].tobytes(),
                            head_ends.astype("<u4").tobytes(),
                            uuid_ends.astype("<u4").tobytes(),
                            src,
                            rid,
                            model,
                            *jobs,
                            self._uuids[rack],
                        )
                    ),
                )
            )
        self._ts.clear()
        self._interval.clear()
        return out
