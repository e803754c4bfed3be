"""PyTorch nn.Module (any forward that torch.fx can trace, e.g. residual `x + f(x)`) -> float CNN `Model`.

torch.fx.symbolic_trace gives the module's graph; every call is translated into a tinysense.cnn.graph `Node` and
lowered there (shared with the ONNX converter). Supported: the modules of tinysense.cnn.pytorch (Conv2d, BatchNorm2d,
ReLU, ReLU6, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, Linear, Softmax, Dropout, Identity), `+` /
torch.add of two tensors, torch.relu / F.relu / F.relu6 / Tensor.relu, torch.flatten(x, 1) / Tensor.flatten(1) /
x.view(x.size(0), -1) / x.reshape(x.size(0), -1), F.softmax(x, dim=1), F.adaptive_avg_pool2d(x, 1).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from tinysense.cnn.graph import Node, UnsupportedModel, lower
from tinysense.cnn.model import Model


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _np(t: Any) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().double().numpy()


def _module_node(m: Any, where: str, inputs: list[str], output: str) -> Node:
    import torch.nn as nn

    if isinstance(m, nn.Conv2d):
        k, s = _pair(m.kernel_size), _pair(m.stride)
        if _pair(m.dilation) != (1, 1) or m.padding_mode != "zeros":
            raise UnsupportedModel(f"{where}: dilation and non-zero padding modes are not supported")
        if m.padding == "same":   # PyTorch puts the odd pixel at the end
            pads: Any = ((k[0] - 1) // 2, (k[1] - 1) // 2, k[0] - 1 - (k[0] - 1) // 2, k[1] - 1 - (k[1] - 1) // 2)
        elif m.padding == "valid":
            pads = (0, 0, 0, 0)
        else:
            p = _pair(m.padding)
            pads = (p[0], p[1], p[0], p[1])
        return Node("conv", where, inputs, output, {"weight": _np(m.weight), "bias": _np(m.bias), "stride": s,
                                                    "pads": pads, "groups": m.groups})
    if isinstance(m, nn.BatchNorm2d):
        if not m.track_running_stats or m.running_mean is None:
            raise UnsupportedModel(f"{where}: BatchNorm2d without running statistics")
        c = m.num_features
        return Node("batchnorm", where, inputs, output, {
            "gamma": _np(m.weight) if m.affine else np.ones(c), "beta": _np(m.bias) if m.affine else np.zeros(c),
            "mean": _np(m.running_mean), "var": _np(m.running_var), "eps": float(m.eps)})
    if isinstance(m, (nn.ReLU, nn.ReLU6)):
        return Node("relu6" if isinstance(m, nn.ReLU6) else "relu", where, inputs, output)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        k = _pair(m.kernel_size)
        s = _pair(m.stride if m.stride is not None else m.kernel_size)
        p = _pair(m.padding)
        if m.ceil_mode:
            raise UnsupportedModel(f"{where}: ceil_mode is not supported")
        if isinstance(m, nn.MaxPool2d) and (_pair(m.dilation) != (1, 1) or m.return_indices):
            raise UnsupportedModel(f"{where}: dilation/return_indices are not supported")
        if isinstance(m, nn.AvgPool2d) and (m.divisor_override or (p != (0, 0) and m.count_include_pad)):
            raise UnsupportedModel(f"{where}: padding needs count_include_pad=False; no divisor_override")
        op = "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool"
        return Node(op, where, inputs, output, {"kernel": k, "stride": s, "pads": (p[0], p[1], p[0], p[1])})
    if isinstance(m, nn.AdaptiveAvgPool2d):
        if _pair(m.output_size) != (1, 1):
            raise UnsupportedModel(f"{where}: only AdaptiveAvgPool2d(1) (global average pooling)")
        return Node("gap", where, inputs, output)
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise UnsupportedModel(f"{where}: only Flatten(1, -1)")
        return Node("flatten", where, inputs, output)
    if isinstance(m, nn.Linear):
        return Node("dense", where, inputs, output, {"weight": _np(m.weight), "bias": _np(m.bias)})
    if isinstance(m, nn.Softmax):
        if m.dim not in (1, -1):
            raise UnsupportedModel(f"{where}: Softmax over dim {m.dim}; only over the features (dim=1)")
        return Node("softmax", where, inputs, output)
    if isinstance(m, (nn.Dropout, nn.Identity)):
        return Node("identity", where, inputs, output)
    raise UnsupportedModel(f"{where}: {type(m).__name__} is not supported")


def from_fx(module: Any, input_shape: tuple[int, int, int], *, in_scale: float = 1.0 / 255.0,
            in_offset: float = 0.0) -> Model:
    """The float32 model of `module` (N x C x H x W input of H x W x C `input_shape`), traced with torch.fx."""
    import torch
    import torch.fx
    import torch.nn.functional as F

    try:
        traced = torch.fx.symbolic_trace(module.eval())
    except Exception as error:   # data-dependent control flow and the like
        raise UnsupportedModel(f"torch.fx cannot trace {type(module).__name__}: {error}") from None
    nodes: list[Node] = []
    input_name = output_name = None
    shapes: set[str] = set()   # x.size(0) and the like: only used as view/reshape arguments

    for n in traced.graph.nodes:
        where = f"node '{n.name}' ({n.op} {getattr(n.target, '__name__', n.target)})"
        args = [a.name if isinstance(a, torch.fx.Node) else a for a in n.args]
        if n.op == "placeholder":
            if input_name is not None:
                raise UnsupportedModel(f"{where}: one input tensor is supported")
            input_name = n.name
        elif n.op == "output":
            if not isinstance(n.args[0], torch.fx.Node):
                raise UnsupportedModel(f"{where}: one output tensor is supported")
            output_name = n.args[0].name
        elif n.op == "call_module":
            where = f"node '{n.name}' (module {n.target}: {type(traced.get_submodule(n.target)).__name__})"
            nodes.append(_module_node(traced.get_submodule(n.target), where, args[:1], n.name))
        elif n.op == "call_function" and n.target in (operator.add, torch.add) and len(args) == 2 and not n.kwargs:
            if not all(isinstance(a, torch.fx.Node) for a in n.args):
                raise UnsupportedModel(f"{where}: adding a constant is not supported (add two tensors)")
            nodes.append(Node("add", where, args, n.name))
        elif (n.op == "call_function" and n.target in (torch.relu, F.relu)) or (n.op == "call_method"
                                                                               and n.target == "relu"):
            nodes.append(Node("relu", where, args[:1], n.name))
        elif n.op == "call_function" and n.target is F.relu6:
            nodes.append(Node("relu6", where, args[:1], n.name))
        elif n.op == "call_method" and n.target == "size":
            shapes.add(n.name)
        elif ((n.op == "call_function" and n.target is torch.flatten) or (n.op == "call_method"
                                                                           and n.target == "flatten")):
            start = n.kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
            if start != 1 or n.kwargs.get("end_dim", args[2] if len(args) > 2 else -1) != -1:
                raise UnsupportedModel(f"{where}: only flatten(x, 1) (keeping the batch dimension)")
            nodes.append(Node("flatten", where, args[:1], n.name))
        elif n.op == "call_method" and n.target in ("view", "reshape"):
            dims = args[1:] if len(args) > 2 else list(args[1]) if len(args) == 2 else []
            if len(dims) != 2 or dims[1] != -1 or not (dims[0] in shapes or dims[0] in (1, -1)):
                raise UnsupportedModel(f"{where}: only x.{n.target}(x.size(0), -1) (a flatten)")
            nodes.append(Node("flatten", where, args[:1], n.name))
        elif n.op == "call_function" and n.target is F.softmax:
            if n.kwargs.get("dim", args[1] if len(args) > 1 else None) not in (1, -1):
                raise UnsupportedModel(f"{where}: only softmax(x, dim=1)")
            nodes.append(Node("softmax", where, args[:1], n.name))
        elif n.op == "call_function" and n.target is F.adaptive_avg_pool2d:
            if _pair(n.kwargs.get("output_size", args[1] if len(args) > 1 else None)) != (1, 1):
                raise UnsupportedModel(f"{where}: only adaptive_avg_pool2d(x, 1)")
            nodes.append(Node("gap", where, args[:1], n.name))
        else:
            raise UnsupportedModel(f"{where} is not supported")
    if input_name is None or output_name is None:
        raise UnsupportedModel("the traced graph has no input or no output")
    return lower(nodes, input_name, output_name, input_shape, in_scale=in_scale, in_offset=in_offset)
