"""The CNN model in memory (`Model`, `Layer`) and its file format for the device's `emlearn_cnn` module.

Tensors are H x W x C. Tensor 0 is the input, tensor i + 1 layer i's output. A layer reads `src` (None: the
previous tensor) and an add also `src2`, so a model is a graph in topological order (residual blocks); `plan_slots`
assigns every tensor an arena slot by liveness, as the device checks it.
Weights are kept in the device's layouts: conv2d O x KH x KW x I, depthwise KH x KW x C,
dense O x I (inputs flattened H x W x C). The byte layout is documented in usermods/emlearn_cnn/cnn.h;
`write` and `read` are its only implementation on the PC side.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

MAGIC = b"TSCN"
FORMAT_VERSION = 2           # 1: a chain of layers in two alternating slots (still read, here and on the device)
MAX_SLOTS = 16
ADD_LEFT_SHIFT = 20
HEADER = struct.Struct("<4sBBBBIIIHHHHfffiI")   # 48 bytes
LAYER = struct.Struct("<BBBBBBBBHHHHIIbbbbI")   # 32 bytes
ALIGN = 16
MAX_LAYERS = 64
MAX_DIM = 2048
MAX_KERNEL = 5

FLOAT32, INT8 = 1, 2
CONV2D, DEPTHWISE, MAXPOOL, AVGPOOL, GLOBAL_AVGPOOL, DENSE, FLATTEN, SOFTMAX, ADD = 1, 2, 3, 4, 5, 6, 7, 8, 9
LAYER_NAMES = {CONV2D: "conv2d", DEPTHWISE: "depthwise", MAXPOOL: "maxpool", AVGPOOL: "avgpool",
               GLOBAL_AVGPOOL: "global_avgpool", DENSE: "dense", FLATTEN: "flatten", SOFTMAX: "softmax", ADD: "add"}
IN_PLACE = (FLATTEN, SOFTMAX)   # same bytes, new shape: they stay in their input's slot
ACT_NONE, ACT_RELU, ACT_RELU6 = 0, 1, 2
WEIGHTED = (CONV2D, DEPTHWISE, DENSE)


class ModelFormatError(ValueError):
    pass


@dataclass
class Layer:
    type: int
    out_shape: tuple[int, int, int]
    act: int = ACT_NONE
    kernel: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (0, 0)
    pad: tuple[int, int] = (0, 0)             # top, left (bottom/right follow from the output size)
    weights: np.ndarray | None = None          # float32 (float model) or int8 (int8 model), device layout
    bias: np.ndarray | None = None             # float32 or int32
    mult: np.ndarray | None = None             # int32 per output channel (int8); add: input 1, input 2, output
    shift: np.ndarray | None = None            # int32 per output channel (int8); add: as mult
    src: int | None = None                     # input tensor (0 the image, j + 1 layer j's output); None: previous
    src2: int | None = None                    # add: the second input tensor
    in_zp: int = 0
    out_zp: int = 0
    act_min: int = 0
    act_max: int = 0

    @property
    def name(self) -> str:
        return LAYER_NAMES.get(self.type, f"type {self.type}")


@dataclass
class Model:
    dtype: int
    input_shape: tuple[int, int, int]
    layers: list[Layer]
    in_scale: float = 1.0 / 255.0
    in_offset: float = 0.0
    out_scale: float = 1.0
    out_zp: int = 0
    # Not in the file: per-layer output quantisation (scale) of an int8 model, for reports.
    scales: list[float] = field(default_factory=list)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return self.layers[-1].out_shape

    def copy(self) -> Model:
        return replace(self, layers=[replace(layer) for layer in self.layers], scales=list(self.scales))

    def source(self, i: int) -> int:
        """The tensor layer i reads (its first input)."""
        src = self.layers[i].src
        return i if src is None else src

    def tensor_shape(self, t: int) -> tuple[int, int, int]:
        return self.layers[t - 1].out_shape if t > 0 else self.input_shape


def plan_slots(model: Model) -> list[int]:
    """Every layer's output slot, by liveness: a layer writes the lowest slot whose tensors are no longer read
    (add: also one of its own inputs' slots, being elementwise); flatten/softmax stay in place. The input is in
    slot 0. The device re-checks the plan (cnn.c check_slots)."""
    n = len(model.layers)
    last_use = [-1] * (n + 1)
    for i, layer in enumerate(model.layers):
        last_use[model.source(i)] = i
        if layer.type == ADD:
            assert layer.src2 is not None
            last_use[layer.src2] = i
    last_use[n] = n
    slot_of = [0]
    for i, layer in enumerate(model.layers):
        if layer.type in IN_PLACE:
            slot_of.append(slot_of[model.source(i)])
            continue
        busy = {slot_of[t] for t in range(i + 1)
                if last_use[t] > i or (last_use[t] == i and layer.type != ADD)}
        slot_of.append(min(s for s in range(MAX_SLOTS + 1) if s not in busy))
        if slot_of[-1] >= MAX_SLOTS:
            raise ValueError(f"layer {i} ({layer.name}): the graph keeps more than {MAX_SLOTS} tensors alive")
    return slot_of[1:]

def _tensor_bytes(values: int, dtype: int) -> int:
    size = values * (1 if dtype == INT8 else 4)
    return (size + ALIGN - 1) // ALIGN * ALIGN


def n_slots(model: Model) -> int:
    return max(2, max(plan_slots(model)) + 1)


def arena_size(model: Model) -> int:
    """Bytes of the device's activation arena: n_slots slots (2 for a chain), each the largest tensor (16-byte
    rounded)."""
    sizes = [int(np.prod(model.input_shape))] + [int(np.prod(layer.out_shape)) for layer in model.layers]
    return n_slots(model) * max(_tensor_bytes(n, model.dtype) for n in sizes)


def _params(layer: Layer, dtype: int) -> bytes:
    if layer.type == ADD and dtype == INT8:
        assert layer.mult is not None and layer.shift is not None
        return np.concatenate([layer.mult, layer.shift]).astype("<i4").tobytes()
    if layer.type not in WEIGHTED:
        return b""
    assert layer.weights is not None and layer.bias is not None
    if dtype == FLOAT32:
        return (np.ascontiguousarray(layer.weights, "<f4").tobytes()
                + np.ascontiguousarray(layer.bias, "<f4").tobytes())
    assert layer.mult is not None and layer.shift is not None
    w = np.ascontiguousarray(layer.weights, np.int8).tobytes()
    w += bytes(-len(w) % 4)
    return w + b"".join(np.ascontiguousarray(a, "<i4").tobytes() for a in (layer.bias, layer.mult, layer.shift))


def is_chain(model: Model) -> bool:
    return all(layer.type != ADD and layer.src in (None, i) for i, layer in enumerate(model.layers))


def write(model: Model) -> bytes:
    """The model file (bytes) for emlearn_cnn.new(). A chain of layers is written as version 1 (byte for byte what
    firmware without graph support reads too); a graph (adds, skipped tensors) as version 2 with its slot plan."""
    if not 1 <= len(model.layers) <= MAX_LAYERS:
        raise ValueError(f"{len(model.layers)} layers: the device supports 1 to {MAX_LAYERS}")
    offset = HEADER.size + LAYER.size * len(model.layers)
    table, blobs = b"", b""
    slots = plan_slots(model)
    version = 1 if is_chain(model) else FORMAT_VERSION
    for i, layer in enumerate(model.layers):
        params = _params(layer, model.dtype)
        where = 0
        if params:
            offset += -offset % ALIGN
            blobs += bytes(offset - HEADER.size - LAYER.size * len(model.layers) - len(blobs))
            where = offset
            blobs += params
            offset += len(params)
        q = model.dtype == INT8
        table += LAYER.pack(layer.type, layer.act, *layer.kernel, *layer.stride, *layer.pad, *layer.out_shape, 0,
                            where, len(params), layer.in_zp if q else 0, layer.out_zp if q else 0,
                            layer.act_min if q else 0, layer.act_max if q else 0,
                            0 if version == 1 else model.source(i) | (layer.src2 or 0) << 8 | slots[i] << 16)
    body = table + blobs
    body += bytes(-(HEADER.size + len(body)) % 4)
    length = HEADER.size + len(body)
    h, w, c = model.input_shape
    fields = [MAGIC, version, model.dtype, len(model.layers), 0, 0, length, arena_size(model), h, w, c,
              0 if version == 1 else n_slots(model),
              model.in_scale, model.in_offset, model.out_scale, model.out_zp if model.dtype == INT8 else 0, 0]
    header = HEADER.pack(*fields)
    crc = zlib.crc32(body, zlib.crc32(header[12:48], zlib.crc32(header[:8])))
    fields[5] = crc
    return HEADER.pack(*fields) + body


def read(data: bytes) -> Model:
    """Parse a model file written by `write` (checks the magic, version, length and CRC; not every rule the
    device checks)."""
    if len(data) < HEADER.size or data[:4] != MAGIC:
        raise ModelFormatError("not a cnn model (magic or header)")
    (_, version, dtype, n_layers, _, crc, length, _arena, h, w, c, _, in_scale, in_offset, out_scale, out_zp,
     _) = HEADER.unpack_from(data)
    if version not in (1, FORMAT_VERSION) or length != len(data):
        raise ModelFormatError(f"version {version} or length {length} (file {len(data)} bytes) not supported")
    if zlib.crc32(data[12:], zlib.crc32(data[:8])) != crc:
        raise ModelFormatError("CRC32 mismatch")
    layers = []
    for i in range(n_layers):
        (kind, act, kh, kw, sh, sw, pt, pl, oh, ow, oc, _, where, size, in_zp, o_zp, amin, amax,
         graph) = LAYER.unpack_from(data, HEADER.size + i * LAYER.size)
        src = i if version == 1 else graph & 0xFF
        layer = Layer(kind, (oh, ow, oc), act, (kh, kw), (sh, sw), (pt, pl), in_zp=in_zp, out_zp=o_zp,
                      act_min=amin, act_max=amax, src=None if src == i else src,
                      src2=(graph >> 8) & 0xFF if kind == ADD else None)
        if kind == ADD and dtype == INT8:
            pairs = np.frombuffer(data[where:where + size], "<i4")
            layer.mult, layer.shift = pairs[:3].copy(), pairs[3:].copy()
        if kind in WEIGHTED:
            ih, iw, ic = layers[src - 1].out_shape if src else (h, w, c)
            n_w = {CONV2D: oc * kh * kw * ic, DEPTHWISE: kh * kw * oc, DENSE: oc * ih * iw * ic}[kind]
            shape = {CONV2D: (oc, kh, kw, ic), DEPTHWISE: (kh, kw, oc), DENSE: (oc, ih * iw * ic)}[kind]
            blob = data[where:where + size]
            if dtype == FLOAT32:
                values = np.frombuffer(blob, "<f4")
                layer.weights, layer.bias = values[:n_w].reshape(shape), values[n_w:n_w + oc]
            else:
                layer.weights = np.frombuffer(blob, np.int8, n_w).reshape(shape)
                rest = np.frombuffer(blob, "<i4", 3 * oc, (n_w + 3) // 4 * 4)
                layer.bias, layer.mult, layer.shift = rest[:oc], rest[oc:2 * oc], rest[2 * oc:]
        layers.append(layer)
    return Model(dtype, (h, w, c), layers, in_scale, in_offset, out_scale, out_zp)
