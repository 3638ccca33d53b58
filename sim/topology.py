"""The facility's physical layout as dense numpy arrays, built once from a scenario.

GPUs get a dense index 0..n-1 in scenario order (campus, hall, rack, node, slot), so each rack's
GPUs are one contiguous slice ``rack_offsets[r]:rack_offsets[r + 1]``. A hall is filled with whole
racks of ``gpus_per_node x nodes_per_rack`` GPUs; its last rack holds the remainder in whole nodes.
GPU UUIDs come from the seed, formatted like NVIDIA's
(``GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.config import Scenario
from twin.gpus import GPU_MODELS, MODEL_NAMES

__all__ = ["Topology", "build_topology", "format_uuids"]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

UUID_LEN = 40


@dataclass(frozen=True, slots=True, eq=False)
class Topology:
    """Campuses, halls, racks and GPUs. Model codes index :data:`twin.gpus.MODEL_NAMES`."""

    campus_ids: tuple[str, ...]
    hall_ids: tuple[str, ...]
    hall_campus: I32  # per hall
    rack_ids: tuple[str, ...]
    rack_hall: I32  # per rack
    rack_model: I32  # per rack (a rack is homogeneous)
    rack_offsets: I64  # n_racks + 1; rack r owns GPUs rack_offsets[r]:rack_offsets[r+1]
    rack_nodes: I32  # nodes present in each rack
    gpu_rack: I32  # per GPU
    gpu_hall: I32
    gpu_campus: I32
    gpu_model: I32
    gpu_uuid: U8  # (n, 40) ASCII bytes
    peak_bf16: F64  # per GPU, FLOP/s

    @property
    def n_gpus(self) -> int:
        return int(self.gpu_rack.shape[0])

    @property
    def n_racks(self) -> int:
        return len(self.rack_ids)

    @property
    def rack_sizes(self) -> I64:
        return np.diff(self.rack_offsets)

    def uuid_str(self, gpu: int) -> str:
        return bytes(self.gpu_uuid[gpu]).decode("ascii")

    def model_counts(self) -> dict[str, int]:
        counts = np.bincount(self.gpu_model, minlength=len(MODEL_NAMES))
        return {MODEL_NAMES[i]: int(c) for i, c in enumerate(counts) if c}


def format_uuids(raw: U8) -> U8:
    """(n, 16) random bytes -> (n, 40) ASCII ``GPU-8-4-4-4-12`` hex UUIDs, without a Python loop."""
    n = raw.shape[0]
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 0x0F
    text = hexdigits[nibbles]
    out = np.empty((n, UUID_LEN), dtype=np.uint8)
    out[:, 0:4] = np.frombuffer(b"GPU-", dtype=np.uint8)
    dash = ord("-")
    out[:, 4:12] = text[:, 0:8]
    out[:, 12] = dash
    out[:, 13:17] = text[:, 8:12]
    out[:, 17] = dash
    out[:, 18:22] = text[:, 12:16]
    out[:, 22] = dash
    out[:, 23:27] = text[:, 16:20]
    out[:, 27] = dash
    out[:, 28:40] = text[:, 20:32]
    return out


def build_topology(scenario: Scenario, rng: np.random.Generator) -> Topology:
    """Lay the scenario's halls out into racks and GPUs; ``rng`` only draws the UUIDs."""
    campus_ids = tuple(c.id for c in scenario.campus)
    hall_ids: list[str] = []
    hall_campus: list[int] = []
    rack_ids: list[str] = []
    rack_hall: list[int] = []
    rack_model: list[int] = []
    rack_sizes: list[int] = []
    rack_nodes: list[int] = []
    for ci, campus in enumerate(scenario.campus):
        for hall in campus.hall:
            h = len(hall_ids)
            hall_ids.append(hall.id)
            hall_campus.append(ci)
            gen = scenario.generation[hall.gpu_model]
            code = MODEL_NAMES.index(hall.gpu_model)
            per_rack = gen.gpus_per_node * gen.nodes_per_rack
            full, rest = divmod(hall.gpus, per_rack)
            sizes = [per_rack] * full
            if rest:
                if rest % gen.gpus_per_node:
                    raise ValueError(
                        f"hall {hall.id}: {hall.gpus} GPUs do not fill whole nodes of "
                        f"{gen.gpus_per_node} GPUs"
                    )
                sizes.append(rest)
            for k, size in enumerate(sizes):
                rack_ids.append(f"{hall.id}-r{k + 1:04d}")
                rack_hall.append(h)
                rack_model.append(code)
                rack_sizes.append(size)
                rack_nodes.append(size // gen.gpus_per_node)
    offsets = np.zeros(len(rack_sizes) + 1, dtype=np.int64)
    np.cumsum(rack_sizes, out=offsets[1:])
    n = int(offsets[-1])
    sizes_arr = np.asarray(rack_sizes, dtype=np.int64)
    gpu_rack = np.repeat(np.arange(len(rack_sizes), dtype=np.int32), sizes_arr)
    rack_hall_arr = np.asarray(rack_hall, dtype=np.int32)
    rack_model_arr = np.asarray(rack_model, dtype=np.int32)
    hall_campus_arr = np.asarray(hall_campus, dtype=np.int32)
    gpu_hall = rack_hall_arr[gpu_rack]
    gpu_model = rack_model_arr[gpu_rack]
    peaks = np.array([GPU_MODELS[m].peak_flops("bf16") for m in MODEL_NAMES])
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16)
    return Topology(
        campus_ids=campus_ids,
        hall_ids=tuple(hall_ids),
        hall_campus=hall_campus_arr,
        rack_ids=tuple(rack_ids),
        rack_hall=rack_hall_arr,
        rack_model=rack_model_arr,
        rack_offsets=offsets,
        rack_nodes=np.asarray(rack_nodes, dtype=np.int32),
        gpu_rack=gpu_rack,
        gpu_hall=gpu_hall,
        gpu_campus=hall_campus_arr[gpu_hall],
        gpu_model=gpu_model,
        gpu_uuid=format_uuids(raw),
        peak_bf16=peaks[gpu_model],
    )
