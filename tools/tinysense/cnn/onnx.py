"""ONNX file -> float CNN `Model` (parsed with onnx + onnx.numpy_helper, lowered by tinysense.cnn.graph).

Supported operators (NCHW, one input N x C x H x W, one output): Conv (group 1, or group == channels: depthwise;
pads, strides, auto_pad; no dilation), Gemm (transA 0), MatMul + Add of a constant (a dense layer and its bias),
Relu, Clip(0, 6) / Clip(0), MaxPool, AveragePool (count_include_pad only without padding; no ceil_mode),
GlobalAveragePool, Flatten(axis 1), Reshape to (N, -1), Add of two tensors (residual) or of a constant (a bias),
Softmax (the last operation), BatchNormalization (folded into the Conv before it), Dropout / Identity (skipped),
Constant. Weights must be initializers or Constant nodes. Anything else is refused naming the operator and node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinysense.cnn.graph import Node, UnsupportedModel, lower
from tinysense.cnn.model import Model

SUPPORTED_OPS = ("Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
                 "Flatten", "Reshape", "Softmax", "BatchNormalization", "Dropout", "Identity", "Constant")


def _input_shape(value_info: Any) -> tuple[int, int, int] | None:
    dims = value_info.type.tensor_type.shape.dim
    values = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(values) != 4 or None in values[1:]:
        return None
    _, c, h, w = values
    return int(h), int(w), int(c)  # type: ignore[arg-type]


def from_onnx(source: str | Path | bytes | Any, input_shape: tuple[int, int, int] | None = None, *,
              in_scale: float = 1.0 / 255.0, in_offset: float = 0.0) -> Model:
    """The float32 model of an ONNX file (path, bytes or a loaded onnx.ModelProto). input_shape (H, W, C) is read
    from the graph's input when its dimensions are fixed."""
    import onnx
    from onnx import helper, numpy_helper

    if isinstance(source, (str, Path)):
        try:
            proto = onnx.load(str(source))
        except (OSError, ValueError) as error:
            raise UnsupportedModel(f"cannot read ONNX file {source}: {error}") from None
    elif isinstance(source, (bytes, bytearray)):
        proto = onnx.load_from_string(bytes(source))
    else:
        proto = source
    graph = proto.graph
    consts: dict[str, np.ndarray] = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    inputs = [v for v in graph.input if v.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedModel(f"the graph has {len(inputs)} inputs and {len(graph.output)} outputs; one of each "
                               "is supported")
    shape = input_shape or _input_shape(inputs[0])
    if shape is None:
        raise UnsupportedModel(f"input '{inputs[0].name}' has no fixed N x C x H x W shape; pass input_shape (H, W, C)")

    def const(node: Any, k: int, where: str, what: str) -> np.ndarray | None:
        if k >= len(node.input) or not node.input[k]:
            return None
        if node.input[k] not in consts:
            raise UnsupportedModel(f"{where}: the {what} ('{node.input[k]}') must be a constant (an initializer)")
        return consts[node.input[k]].astype(np.float64)

    nodes: list[Node] = []
    for index, node in enumerate(graph.node):
        op = node.op_type
        where = f"node '{node.name or index}' ({op})"
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x, out = node.input[:1], node.output[0]
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedModel(f"{where}: operator domain '{node.domain}' is not supported")
        if op == "Constant":
            if "value" not in attrs:
                raise UnsupportedModel(f"{where}: only Constant with a tensor 'value'")
            consts[out] = numpy_helper.to_array(attrs["value"])
        elif op == "Conv":
            weight = const(node, 1, where, "weight")
            assert weight is not None
            if weight.ndim != 4 or any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise UnsupportedModel(f"{where}: only 2-D convolutions without dilation")
            auto_pad = attrs.get("auto_pad", b"NOTSET")
            auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
            pads: Any = tuple(attrs.get("pads", [0, 0, 0, 0]))
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                pads = auto_pad
            elif auto_pad == "VALID":
                pads = (0, 0, 0, 0)
            nodes.append(Node("conv", where, x, out, {"weight": weight, "bias": const(node, 2, where, "bias"),
                                                      "stride": tuple(attrs.get("strides", [1, 1])), "pads": pads,
                                                      "groups": int(attrs.get("group", 1))}))
        elif op == "BatchNormalization":
            gamma, beta, mean, var = (const(node, k, where, name) for k, name in
                                      ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
            nodes.append(Node("batchnorm", where, x, out, {"gamma": gamma, "beta": beta, "mean": mean, "var": var,
                                                           "eps": float(attrs.get("epsilon", 1e-5))}))
        elif op == "Gemm":
            b = const(node, 1, where, "B matrix")
            assert b is not None
            if attrs.get("transA", 0):
                raise UnsupportedModel(f"{where}: transA=1 is not supported")
            weight = float(attrs.get("alpha", 1.0)) * (b if attrs.get("transB", 0) else b.T)   # O x I
            c = const(node, 2, where, "C bias")
            bias = None if c is None else float(attrs.get("beta", 1.0)) * c.reshape(-1)
            nodes.append(Node("dense", where, x, out, {"weight": weight, "bias": bias}))
        elif op == "MatMul":
            b = const(node, 1, where, "second operand")
            assert b is not None
            if b.ndim != 2:
                raise UnsupportedModel(f"{where}: only a matrix of weights as the second operand")
            nodes.append(Node("dense", where, x, out, {"weight": b.T, "bias": None}))
        elif op == "Add":
            if node.input[1] in consts or node.input[0] in consts:
                k = 1 if node.input[1] in consts else 0
                nodes.append(Node("bias", where, [node.input[1 - k]], out,
                                  {"bias": consts[node.input[k]].astype(np.float64)}))
            else:
                nodes.append(Node("add", where, list(node.input[:2]), out))
        elif op == "Relu":
            nodes.append(Node("relu", where, x, out))
        elif op == "Clip":
            lo = const(node, 1, where, "min") if len(node.input) > 1 else attrs.get("min")
            hi = const(node, 2, where, "max") if len(node.input) > 2 else attrs.get("max")
            lo_v = None if lo is None else float(np.asarray(lo).reshape(-1)[0])
            hi_v = None if hi is None else float(np.asarray(hi).reshape(-1)[0])
            if lo_v == 0.0 and hi_v == 6.0:
                nodes.append(Node("relu6", where, x, out))
            elif lo_v == 0.0 and (hi_v is None or hi_v == np.inf):
                nodes.append(Node("relu", where, x, out))
            else:
                raise UnsupportedModel(f"{where}: Clip({lo_v}, {hi_v}); only Clip(0, 6) (ReLU6) and Clip(0) (ReLU)")
        elif op in ("MaxPool", "AveragePool"):
            k = tuple(attrs["kernel_shape"])
            if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])) or len(k) != 2:
                raise UnsupportedModel(f"{where}: only 2-D pooling without ceil_mode or dilation")
            if op == "MaxPool" and attrs.get("storage_order", 0):
                raise UnsupportedModel(f"{where}: storage_order=1 is not supported")
            pads = tuple(attrs.get("pads", [0, 0, 0, 0]))
            auto_pad = attrs.get("auto_pad", b"NOTSET")
            auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                pads = auto_pad
            if op == "AveragePool" and attrs.get("count_include_pad", 0) and pads != (0, 0, 0, 0):
                raise UnsupportedModel(f"{where}: padding needs count_include_pad=0 (the device skips padding)")
            nodes.append(Node("maxpool" if op == "MaxPool" else "avgpool", where, x, out,
                              {"kernel": k, "stride": tuple(attrs.get("strides", [1, 1])), "pads": pads}))
        elif op == "GlobalAveragePool":
            nodes.append(Node("gap", where, x, out))
        elif op == "Flatten":
            if attrs.get("axis", 1) != 1:
                raise UnsupportedModel(f"{where}: only Flatten(axis=1)")
            nodes.append(Node("flatten", where, x, out))
        elif op == "Reshape":
            target = const(node, 1, where, "shape")
            assert target is not None
            if target.size != 2 or target[0] not in (0, 1, -1):
                raise UnsupportedModel(f"{where}: only a reshape to (N, features) (a flatten), got {target.tolist()}")
            nodes.append(Node("flatten", where, x, out))
        elif op == "Softmax":
            if attrs.get("axis", -1) not in (1, -1):
                raise UnsupportedModel(f"{where}: only a softmax over the features (axis 1)")
            nodes.append(Node("softmax", where, x, out))
        elif op in ("Dropout", "Identity"):
            nodes.append(Node("identity", where, x, out))
        else:
            raise UnsupportedModel(f"{where}: operator {op} is not supported (supported: {', '.join(SUPPORTED_OPS)})")
    return lower(nodes, inputs[0].name, graph.output[0].name, shape, in_scale=in_scale, in_offset=in_offset)


def reference_forward(source: str | Path | bytes | Any, model: Model, images: np.ndarray) -> np.ndarray:
    """onnx.reference.ReferenceEvaluator's outputs (float64, N x outputs) on uint8 images fed as the device feeds
    its network (pixel * in_scale + in_offset, NCHW)."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    from tinysense.cnn.reference import float_input

    proto = onnx.load(str(source)) if isinstance(source, (str, Path)) else source
    session = ReferenceEvaluator(proto)
    name = next(v.name for v in proto.graph.input if v.name not in {i.name for i in proto.graph.initializer})
    x = float_input(model, images).transpose(0, 3, 1, 2).copy()
    (out,) = session.run(None, {name: x})
    return np.asarray(out, dtype=np.float64).reshape(len(images), -1)
