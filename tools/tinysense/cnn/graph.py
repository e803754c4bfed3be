"""A small framework-neutral graph of NCHW operations, and its lowering to the device's `Model` (H x W x C).

The torch.fx and ONNX front ends (tinysense.cnn.fx, tinysense.cnn.onnx) translate their graphs into `Node`s; `lower`
does what both need: shapes, BatchNorm folding, bias adds and ReLU/ReLU6 fusion into the layer before (only where
that layer's output has no other reader), NCHW -> HWC weight layouts (including the column order of a dense layer
after a flatten), and residual adds between any two earlier tensors. Every refusal names the source node.

Operations (attrs):
  conv       weight O x I/groups x KH x KW, bias O | None, stride (sh, sw), pads (top, left, bottom, right) or
             "SAME_UPPER" / "SAME_LOWER", groups (1, or the channel count: depthwise)
  batchnorm  gamma, beta, mean, var, eps           bias        bias (a constant added to the channels)
  relu, relu6                                       maxpool / avgpool   kernel, stride, pads (as conv)
  gap (global average pool), flatten, identity      dense       weight O x I, bias O | None
  add (two tensors)                                 softmax     (the last operation, over a flat tensor)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinysense.cnn.model import (
    ACT_NONE,
    ACT_RELU,
    ACT_RELU6,
    ADD,
    AVGPOOL,
    CONV2D,
    DENSE,
    DEPTHWISE,
    FLATTEN,
    FLOAT32,
    GLOBAL_AVGPOOL,
    MAX_DIM,
    MAX_KERNEL,
    MAX_LAYERS,
    MAXPOOL,
    SOFTMAX,
    Layer,
    Model,
)


class UnsupportedModel(ValueError):
    pass


@dataclass
class Node:
    op: str
    where: str                      # for messages: "node 'name' (OpType)"
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)


FUSES_ACTIVATION = (CONV2D, DEPTHWISE, DENSE, ADD, MAXPOOL, AVGPOOL, GLOBAL_AVGPOOL)


def _pads(pads: Any, size: tuple[int, int], k: tuple[int, int], s: tuple[int, int]) -> tuple[int, int, int, int]:
    if isinstance(pads, str):   # ONNX auto_pad: output = ceil(in / stride), the odd pixel at the end (UPPER)
        total = [max(0, (-(-n // st) - 1) * st + kk - n) for n, kk, st in zip(size, k, s, strict=True)]
        first = [t // 2 if pads == "SAME_UPPER" else t - t // 2 for t in total]
        return first[0], first[1], total[0] - first[0], total[1] - first[1]
    return tuple(int(p) for p in pads)  # type: ignore[return-value]


def lower(nodes: list[Node], input_name: str, output_name: str, input_shape: tuple[int, int, int], *,
          in_scale: float = 1.0 / 255.0, in_offset: float = 0.0) -> Model:
    """The float32 `Model` computing `output_name` from `input_name` (N x C x H x W, of H x W x C `input_shape`)."""
    alias: dict[str, str] = {}

    def resolve(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    kept = []
    for node in nodes:   # identities (dropout, ...) vanish: their readers read their input
        if node.op == "identity":
            alias[node.output] = resolve(node.inputs[0])
        else:
            kept.append(Node(node.op, node.where, [resolve(i) for i in node.inputs], node.output, node.attrs))
    output_name = resolve(output_name)
    readers: dict[str, int] = {output_name: 1}
    for node in kept:
        for name in node.inputs:
            readers[name] = readers.get(name, 0) + 1

    layers: list[Layer] = []
    tensor: dict[str, int] = {input_name: 0}              # value -> tensor index
    flat_from: dict[int, tuple[int, int, int]] = {}        # tensor -> the h x w x c (not 1x1) it flattened

    def shape_of(t: int) -> tuple[int, int, int]:
        return layers[t - 1].out_shape if t > 0 else tuple(input_shape)  # type: ignore[return-value]

    def source(node: Node, k: int = 0) -> int:
        name = node.inputs[k]
        if name not in tensor:
            raise UnsupportedModel(f"{node.where}: input '{name}' is not computed from the model's input "
                                   "(constants are supported as weights only)")
        return tensor[name]

    def emit(node: Node, layer: Layer, src: int) -> None:
        if len(layers) >= MAX_LAYERS:
            raise UnsupportedModel(f"{node.where}: more than {MAX_LAYERS} layers")
        if max(layer.out_shape) > MAX_DIM or min(layer.out_shape) < 1:
            raise UnsupportedModel(f"{node.where}: output {layer.out_shape} out of range")
        layer.src = None if src == len(layers) else src
        layers.append(layer)
        tensor[node.output] = len(layers)

    def fusable(node: Node, kinds: tuple[int, ...], what: str) -> Layer:
        t = source(node)
        layer = layers[t - 1] if t > 0 else None
        if layer is None or layer.type not in kinds or layer.act != ACT_NONE or readers[node.inputs[0]] != 1:
            raise UnsupportedModel(f"{node.where}: {what} must directly follow a "
                                   f"{'/'.join(Layer(k, (1, 1, 1)).name for k in kinds)} layer whose output "
                                   "nothing else reads")
        tensor[node.output] = t
        return layer

    for node in kept:
        a = node.attrs
        if node.op == "conv":
            t = source(node)
            h, w, c = shape_of(t)
            weight = np.asarray(a["weight"], dtype=np.float64)
            o, i_per_group, kh, kw = weight.shape
            k, s = (kh, kw), tuple(a.get("stride", (1, 1)))
            pt, pl, pb, pr = _pads(a.get("pads", (0, 0, 0, 0)), (h, w), k, s)  # type: ignore[arg-type]
            groups = int(a.get("groups", 1))
            if max(k) > MAX_KERNEL:
                raise UnsupportedModel(f"{node.where}: kernel {kh}x{kw} is larger than {MAX_KERNEL}x{MAX_KERNEL}")
            if pt >= kh or pl >= kw or pb >= kh or pr >= kw:
                raise UnsupportedModel(f"{node.where}: padding {(pt, pl, pb, pr)} must be smaller than the kernel")
            if groups == 1 and i_per_group == c:
                kind, wt = CONV2D, weight.transpose(0, 2, 3, 1)            # O x KH x KW x I
            elif groups == c == o and i_per_group == 1:
                kind, wt = DEPTHWISE, weight[:, 0].transpose(1, 2, 0)      # KH x KW x C
            else:
                raise UnsupportedModel(f"{node.where}: groups={groups} with {c} input and {o} output channels "
                                       "(only 1 or depthwise: groups == input == output channels)")
            oh, ow = (h + pt + pb - kh) // s[0] + 1, (w + pl + pr - kw) // s[1] + 1
            bias = np.zeros(o) if a.get("bias") is None else np.asarray(a["bias"], dtype=np.float64).reshape(o)
            emit(node, Layer(kind, (oh, ow, o), kernel=k, stride=s, pad=(pt, pl), weights=wt, bias=bias), t)
        elif node.op in ("maxpool", "avgpool"):
            t = source(node)
            h, w, c = shape_of(t)
            k, s = tuple(a["kernel"]), tuple(a["stride"])
            pt, pl, pb, pr = _pads(a.get("pads", (0, 0, 0, 0)), (h, w), k, s)  # type: ignore[arg-type]
            if pt >= k[0] or pl >= k[1] or pb >= k[0] or pr >= k[1]:
                raise UnsupportedModel(f"{node.where}: padding {(pt, pl, pb, pr)} must be smaller than the kernel")
            oh, ow = (h + pt + pb - k[0]) // s[0] + 1, (w + pl + pr - k[1]) // s[1] + 1
            kind = MAXPOOL if node.op == "maxpool" else AVGPOOL
            emit(node, Layer(kind, (oh, ow, c), kernel=k, stride=s, pad=(pt, pl)), t)  # type: ignore[arg-type]
        elif node.op == "gap":
            t = source(node)
            emit(node, Layer(GLOBAL_AVGPOOL, (1, 1, shape_of(t)[2])), t)
        elif node.op == "flatten":
            t = source(node)
            h, w, c = shape_of(t)
            if (h, w) == (1, 1) or t in flat_from:
                tensor[node.output] = t          # already flat: nothing to do
                continue
            emit(node, Layer(FLATTEN, (1, 1, h * w * c)), t)
            flat_from[len(layers)] = (h, w, c)
        elif node.op == "dense":
            t = source(node)
            h, w, c = shape_of(t)
            if (h, w) != (1, 1):
                raise UnsupportedModel(f"{node.where}: a dense layer needs a flat input, got {h}x{w}x{c} "
                                       "(flatten it first)")
            weight = np.asarray(a["weight"], dtype=np.float64)
            if weight.ndim != 2 or weight.shape[1] != c:
                raise UnsupportedModel(f"{node.where}: weight {weight.shape} does not take {c} inputs")
            if t in flat_from:   # the framework flattened C x H x W; the device's tensor is H x W x C
                fh, fw, fc = flat_from[t]
                weight = weight.reshape(-1, fc, fh, fw).transpose(0, 2, 3, 1).reshape(len(weight), -1)
            o = weight.shape[0]
            bias = np.zeros(o) if a.get("bias") is None else np.asarray(a["bias"], dtype=np.float64).reshape(o)
            emit(node, Layer(DENSE, (1, 1, o), weights=weight, bias=bias), t)
        elif node.op == "batchnorm":
            layer = fusable(node, (CONV2D, DEPTHWISE), "BatchNormalization")
            factor = np.asarray(a["gamma"], np.float64) / np.sqrt(np.asarray(a["var"], np.float64) + a["eps"])
            assert layer.weights is not None and layer.bias is not None
            layer.weights = layer.weights * (factor if layer.type == DEPTHWISE else factor[:, None, None, None])
            layer.bias = (layer.bias - np.asarray(a["mean"], np.float64)) * factor + np.asarray(a["beta"],
                                                                                                 np.float64)
        elif node.op == "bias":
            layer = fusable(node, (CONV2D, DEPTHWISE, DENSE), "a constant add (bias)")
            bias = np.asarray(a["bias"], np.float64)
            o = layer.out_shape[2]
            if bias.size not in (1, o) or (bias.size > 1 and bias.squeeze().shape != (o,)):
                raise UnsupportedModel(f"{node.where}: a constant of shape {bias.shape} is not a per-channel bias")
            assert layer.bias is not None
            layer.bias = layer.bias + bias.reshape(-1)   # one value or one per channel
        elif node.op in ("relu", "relu6"):
            layer = fusable(node, FUSES_ACTIVATION, node.op.capitalize() if node.op == "relu" else "ReLU6")
            layer.act = ACT_RELU if node.op == "relu" else ACT_RELU6
        elif node.op == "add":
            t1, t2 = source(node, 0), source(node, 1)
            if shape_of(t1) != shape_of(t2) or flat_from.get(t1) != flat_from.get(t2):
                raise UnsupportedModel(f"{node.where}: adds tensors of shapes {shape_of(t1)} and {shape_of(t2)} "
                                       "(H x W x C); only equal shapes (no broadcasting)")
            emit(node, Layer(ADD, shape_of(t1), src2=t2), t1)
            if t1 in flat_from:
                flat_from[len(layers)] = flat_from[t1]
        elif node.op == "softmax":
            t = source(node)
            h, w, c = shape_of(t)
            if node.output != output_name or (h, w) != (1, 1) or t in flat_from:
                raise UnsupportedModel(f"{node.where}: softmax must be the last operation, over a flat vector "
                                       "(after a dense layer)")
            emit(node, Layer(SOFTMAX, (1, 1, c)), t)
        else:
            raise UnsupportedModel(f"{node.where}: operation {node.op} is not supported")
    if not layers:
        raise UnsupportedModel("the graph has no layers")
    if tensor.get(output_name) != len(layers):
        raise UnsupportedModel(f"the output '{output_name}' must be the last layer's result")
    if len(layers) in flat_from and len(layers) > 1:
        h, w, c = flat_from[len(layers)]
        raise UnsupportedModel(f"the output is a flattened {h}x{w}x{c} tensor: its order would be H x W x C, not the "
                               "framework's C x H x W; end with a dense layer or global pooling")
    for layer in layers:
        if layer.weights is not None:
            layer.weights = np.ascontiguousarray(layer.weights, dtype=np.float32)
            layer.bias = np.ascontiguousarray(layer.bias, dtype=np.float32)
    return Model(FLOAT32, tuple(input_shape), layers, in_scale=in_scale, in_offset=in_offset)  # type: ignore[arg-type]
