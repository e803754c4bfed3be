"""CNN converters beyond nn.Sequential: torch.fx traced modules with residual adds, and ONNX files.

- PyTorch residual networks (x + f(x), a projection shortcut, BatchNorm, depthwise, ReLU6) traced with torch.fx:
  the C engine's float32 outputs within 1e-5 of PyTorch; int8 bit-exact with the NumPy reference.
- The same networks exported with torch.onnx.export(dynamo=False) and small graphs built with onnx.helper (Gemm,
  MatMul + Add, Reshape, Clip, AveragePool, GlobalAveragePool, Softmax, BatchNormalization, depthwise Conv): float32
  within 1e-5 of onnx.reference.ReferenceEvaluator; int8 bit-exact; unsupported operators named with their node.
- Residual models in the standard, 32-bit and sanitize builds; bad add/arena/version files rejected by the device.
- `tinysense convert model.onnx --calibration ...` proves the device's parity in the host firmware.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from tinysense import cli, cnn
from tinysense.cnn import model as fmt
from tinysense.cnn.graph import UnsupportedModel

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from tinysense.cnn import pytorch as cnn_torch  # noqa: E402
from tinysense.cnn.fx import from_fx  # noqa: E402
from tinysense.cnn.onnx import from_onnx, reference_forward  # noqa: E402


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class ResNet(nn.Module):
    """stem -> residual block -> x + relu6(depthwise(x)) -> projection shortcut (strided) -> pool -> dense."""

    def __init__(self, c_in: int = 1, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(c_in, 8, 3, padding="same"), nn.ReLU())
        self.block = Block(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.down = nn.Conv2d(8, 12, 3, stride=2, padding=1)
        self.project = nn.Conv2d(8, 12, 1, stride=2)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(12 * 2 * 2, classes)

    def forward(self, x):
        x = self.block(self.stem(x))
        x = x + F.relu6(self.dw(x))
        x = F.relu(self.down(x) + self.project(x))
        return self.head(self.flatten(self.pool(x)))


def resnet(seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    net = ResNet(**kwargs)
    for m in net.modules():   # non-trivial running statistics, as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


def images(n: int, shape: tuple[int, int, int] = (8, 8, 1), seed: int = 0) -> np.ndarray:
    """Smooth random images (blurred noise), closer to real pictures than white noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, shape[0] + 2, shape[1] + 2, shape[2]))
    x = (x[:, :-2, :-2] + x[:, 1:-1, 1:-1] + x[:, 2:, 2:] + x[:, 2:, :-2]) / 2
    return np.clip(128 + 60 * x, 0, 255).astype(np.uint8)


def export(net: nn.Module, shape: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    x = torch.zeros(1, shape[2], shape[0], shape[1])
    with warnings.catch_warnings():   # the legacy exporter warns that it is legacy; it needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (x,), buf, dynamo=False, input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}})
    return buf.getvalue()


def assert_int8_bit_exact(model: fmt.Model, imgs: np.ndarray, calibration: np.ndarray, variant: str) -> fmt.Model:
    q = cnn.quantize(model, calibration)
    data = cnn.write(q)
    assert cnn.write(cnn.read(data)) == data
    expected = cnn.reference.run_int8(q, imgs)
    got = cnn.run_on_host(data, imgs, variant=variant)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32)), np.abs(got - expected).max()
    return q


# ---- torch.fx ----

@pytest.mark.parametrize("variant", ["standard", "32", "sanitize"])
def test_traced_residual_net_float_matches_torch_int8_bit_exact(variant: str) -> None:
    net = resnet()
    model = cnn.from_torch(net, (8, 8, 1))
    kinds = [layer.type for layer in model.layers]
    assert kinds.count(fmt.ADD) == 3 and fmt.DEPTHWISE in kinds
    assert fmt.n_slots(model) == 3   # a shortcut stays alive beside the branch's two ping-pong tensors
    imgs = images(40 if variant != "sanitize" else 12)
    torch_out = cnn_torch.torch_forward(net, model, imgs)
    got = cnn.run_on_host(cnn.write(model), imgs, variant=variant)
    assert np.abs(got - torch_out).max() <= 1e-5, np.abs(got - torch_out).max()
    q = assert_int8_bit_exact(model, imgs, images(30, seed=1), variant)
    int8_out = cnn.reference.run_int8(q, imgs)
    # quantisation error is small next to the logits' spread
    assert np.abs(int8_out - torch_out).max() <= 0.1 * np.abs(torch_out).max()


def test_traced_functional_forms_and_refusals() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            y = self.conv(x).relu()
            y = torch.add(y, F.relu(self.conv(x)))          # the same conv twice: two layers sharing weights
            y = F.adaptive_avg_pool2d(y, 1)
            return F.softmax(self.fc(torch.flatten(y, 1)), dim=1)

    # an nn.Sequential traced by torch.fx gives the same file as the Sequential converter
    seq = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(4 * 3 * 3, 3), nn.Softmax(dim=1)).eval()
    seq[1].running_var.uniform_(0.5, 2.0)
    assert cnn.write(from_fx(seq, (6, 6, 2))) == cnn.write(cnn.from_torch(seq, (6, 6, 2)))

    net = Functional().eval()
    model = cnn.from_torch(net, (6, 6, 2))
    imgs = images(20, (6, 6, 2))
    got = cnn.run_on_host(cnn.write(model), imgs)
    np.testing.assert_allclose(got, cnn_torch.torch_forward(net, model, imgs), atol=1e-5, rtol=0)

    class Sigmoid(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x)

    with pytest.raises(UnsupportedModel, match="sigmoid"):
        cnn.from_torch(Sigmoid(), (4, 4, 1))

    class Reads(nn.Module):   # the pre-activation is read twice: ReLU cannot be fused
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return F.relu(y) + y

    with pytest.raises(UnsupportedModel, match="nothing else reads"):
        cnn.from_torch(Reads(), (4, 4, 1))

    class Mismatch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x) + self.conv(x)[:, :1]

    with pytest.raises(UnsupportedModel, match="getitem"):
        cnn.from_torch(Mismatch(), (4, 4, 1))


# ---- ONNX ----

@pytest.mark.parametrize("variant", ["standard", "32", "sanitize"])
def test_onnx_export_of_residual_net(variant: str, tmp_path: Path) -> None:
    net = resnet(seed=3)
    path = tmp_path / "resnet.onnx"
    path.write_bytes(export(net, (8, 8, 1)))
    model = from_onnx(path)
    assert [layer.type for layer in model.layers].count(fmt.ADD) == 3
    imgs = images(40)
    onnx_out = reference_forward(path, model, imgs)
    torch_out = cnn_torch.torch_forward(net, model, imgs)
    assert np.abs(onnx_out - torch_out).max() <= 1e-5
    got = cnn.run_on_host(cnn.write(model), imgs, variant=variant)
    assert np.abs(got - onnx_out).max() <= 1e-5, np.abs(got - onnx_out).max()
    # the ONNX and the traced conversions describe the same network
    traced = cnn.from_torch(net, (8, 8, 1))
    assert np.abs(cnn.reference.run_float(traced, imgs) - cnn.reference.run_float(model, imgs)).max() <= 1e-5
    assert_int8_bit_exact(model, imgs, images(30, seed=1), variant)


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def helper_graph(rng: np.random.Generator, softmax: bool = True) -> onnx.ModelProto:
    """6x6x3 input: Conv -> BatchNormalization -> Clip(0, 6) -> depthwise Conv (SAME_UPPER) -> Add (residual) ->
    Relu -> AveragePool -> Reshape(1, -1) -> MatMul + Add -> Relu -> Gemm(transB) -> Softmax."""
    def normal(*shape: int, s: float = 0.4) -> np.ndarray:
        return rng.normal(0, s, shape)

    inits = [
        _init("w1", normal(4, 3, 3, 3)), _init("b1", normal(4, s=0.1)),
        _init("gamma", rng.uniform(0.5, 1.5, 4)), _init("beta", normal(4, s=0.1)),
        _init("mean", normal(4, s=0.1)), _init("var", rng.uniform(0.5, 2, 4)),
        _init("zero", np.array(0.0)), _init("six", np.array(6.0)),
        _init("wd", normal(4, 1, 3, 3)),
        numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "flat"),
        _init("wm", normal(4 * 3 * 3, 7, s=0.3)), _init("bm", normal(7, s=0.1)),
        _init("wg", normal(5, 7)), _init("bg", normal(5, s=0.1)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["n1"], name="bn1",
                         epsilon=1e-3),
        helper.make_node("Clip", ["n1", "zero", "six"], ["r1"], name="relu6"),
        helper.make_node("Conv", ["r1", "wd"], ["d1"], name="dw", group=4, auto_pad="SAME_UPPER"),
        helper.make_node("Add", ["d1", "r1"], ["a1"], name="residual"),
        helper.make_node("Relu", ["a1"], ["r2"], name="relu"),
        helper.make_node("AveragePool", ["r2"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p1", "flat"], ["f1"], name="flatten"),
        helper.make_node("MatMul", ["f1", "wm"], ["m1"], name="matmul"),
        helper.make_node("Add", ["m1", "bm"], ["m2"], name="bias"),
        helper.make_node("Relu", ["m2"], ["m3"], name="relu2"),
        helper.make_node("Gemm", ["m3", "wg", "bg"], ["logits" if not softmax else "g1"], name="gemm", transB=1,
                         alpha=0.5, beta=2.0),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["g1"], ["logits"], name="softmax", axis=1))
    graph = helper.make_graph(nodes, "helper_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                   [1, 3, 6, 6])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def test_onnx_helper_graph_every_operator() -> None:
    proto = helper_graph(np.random.default_rng(7), softmax=False)
    model = from_onnx(proto)
    assert [layer.name for layer in model.layers] == ["conv2d", "depthwise", "add", "avgpool", "flatten", "dense",
                                                      "dense"]
    imgs = images(24, (6, 6, 3))
    onnx_out = np.concatenate([reference_forward(proto, model, imgs[i:i + 1]) for i in range(len(imgs))])
    got = cnn.run_on_host(cnn.write(model), imgs)
    assert np.abs(got - onnx_out).max() <= 1e-5, np.abs(got - onnx_out).max()
    assert_int8_bit_exact(model, imgs, images(20, (6, 6, 3), seed=2), "standard")

    proto = helper_graph(np.random.default_rng(8), softmax=True)
    model = from_onnx(proto)
    onnx_out = np.concatenate([reference_forward(proto, model, imgs[i:i + 1]) for i in range(len(imgs))])
    got = cnn.run_on_host(cnn.write(model), imgs)
    np.testing.assert_allclose(got, onnx_out, atol=1e-5, rtol=0)


def test_onnx_unsupported_operator_named_with_its_node() -> None:
    proto = helper_graph(np.random.default_rng(7))
    proto.graph.node[5].op_type = "Sigmoid"
    with pytest.raises(UnsupportedModel, match=r"node 'relu' \(Sigmoid\): operator Sigmoid is not supported"):
        from_onnx(proto)
    proto = helper_graph(np.random.default_rng(7))
    del proto.graph.node[2].input[2]   # Clip(0, inf): a ReLU, fine
    from_onnx(proto)
    proto.graph.node[2].input[1] = "six"
    with pytest.raises(UnsupportedModel, match=r"node 'relu6' \(Clip\): Clip\(6.0, None\)"):
        from_onnx(proto)
    proto = helper_graph(np.random.default_rng(7))
    proto.graph.node[0].attribute.append(helper.make_attribute("dilations", [2, 2]))
    with pytest.raises(UnsupportedModel, match="conv1.*dilation"):
        from_onnx(proto)


# ---- the device rejects bad graphs ----

def _recrc(data: bytearray) -> bytes:
    struct.pack_into("<I", data, 8, zlib.crc32(bytes(data[12:]), zlib.crc32(bytes(data[:8]))))
    return bytes(data)


BAD_FILE_SCRIPT = """\
import sys, emlearn_cnn
for path in sys.argv[1:]:
    try:
        emlearn_cnn.new(open(path, 'rb').read())
        print('loaded')
    except ValueError as e:
        print(e)
"""


def test_device_rejects_bad_residual_files(tmp_path: Path) -> None:
    from tinysense import host

    net = resnet()
    model = cnn.from_torch(net, (8, 8, 1))
    good = bytearray(cnn.write(cnn.quantize(model, images(8))))
    adds = [i for i, layer in enumerate(model.layers) if layer.type == fmt.ADD]
    cases = {}
    bad = bytearray(good)   # the last add (4x4x12, after the strided convs) reads the stem's 8x8x8 output
    bad[48 + 32 * adds[2] + 29] = 1
    cases["shape"] = _recrc(bad)
    bad = bytearray(good)
    struct.pack_into("<H", bad, 26, 2)   # two slots declared: the plan uses three
    cases["slots"] = _recrc(bad)
    bad = bytearray(good)
    struct.pack_into("<I", bad, 16, struct.unpack_from("<I", bad, 16)[0] - 16)
    cases["arena"] = _recrc(bad)
    bad = bytearray(good)
    bad[4] = 3
    cases["version"] = _recrc(bad)
    bad = bytearray(good)   # the depthwise conv writes over its own input, which the add after it still reads
    dw = next(i for i, layer in enumerate(model.layers) if layer.type == fmt.DEPTHWISE)
    bad[48 + 32 * dw + 30] = fmt.plan_slots(model)[model.source(dw) - 1]
    cases["overwrite"] = _recrc(bad)
    paths = []
    for name, data in [("good", bytes(good)), *cases.items()]:
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    (tmp_path / "run.py").write_text(BAD_FILE_SCRIPT)
    proc = host.run([str(tmp_path / "run.py"), *paths], variant="sanitize", timeout=120)
    lines = proc.stdout.decode().splitlines()
    assert proc.returncode == 0 and not host.sanitizer_report(proc.stderr.decode()), proc.stderr.decode()
    assert lines[0] == "loaded"
    messages = dict(zip(cases, lines[1:], strict=True))
    assert "(add): shapes 4x4x12 + 8x8x8 -> 4x4x12 differ" in messages["shape"], messages["shape"]
    assert "writes slot" in messages["slots"] or "arena slot" in messages["slots"]
    assert "arena of" in messages["arena"] and "planned" in messages["arena"]
    assert "format version 3 is not supported" in messages["version"]
    assert "still needed" in messages["overwrite"], messages["overwrite"]


# ---- the CLI ----

def test_cli_convert_onnx_with_calibration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = resnet(seed=5)
    (tmp_path / "net.onnx").write_bytes(export(net, (8, 8, 1)))
    x_test = images(30, seed=4)
    labels = np.argmax(cnn_torch.torch_forward(net, from_onnx(tmp_path / "net.onnx"), x_test), axis=1)
    np.savez(tmp_path / "test.npz", X_test=x_test, y_test=labels)
    np.savez(tmp_path / "calib.npz", X=images(40, seed=6))
    assert cli.main(["convert", str(tmp_path / "net.onnx"), "--calibration", str(tmp_path / "calib.npz")]) == 0
    report = json.loads((tmp_path / "net.cnn.parity.json").read_text())
    assert report["parity"] and report["samples"] == 30 and report["agree"] == 30
    assert report["dtype"] == "int8" and report["float_agreement"] >= 0.8, report
    device = cnn.read((tmp_path / "net.cnn").read_bytes())
    assert device.dtype == fmt.INT8 and [layer.type for layer in device.layers].count(fmt.ADD) == 3
    assert "30/30" in capsys.readouterr().out

    # a whole module saved with torch.save, float32: within tolerance of PyTorch
    torch.save(net, tmp_path / "net.pt")
    assert cli.main(["convert", str(tmp_path / "net.pt"), "--test-set", str(tmp_path / "test.npz")]) == 0
    report = json.loads((tmp_path / "net.cnn.parity.json").read_text())
    assert report["parity"] and report["dtype"] == "float32" and report["max_rel_diff"] <= 1e-5
    assert report["float_agreement"] == 1.0 and report["device_accuracy"] == 1.0

    # TorchScript (torch.jit.trace + save): converted through its ONNX export
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(net, torch.zeros(1, 1, 8, 8)).save(str(tmp_path / "net.ts"))
    assert cli.main(["convert", str(tmp_path / "net.ts"), "--test-set", str(tmp_path / "test.npz"), "-o",
                     str(tmp_path / "ts.cnn")]) == 0
    report = json.loads((tmp_path / "ts.cnn.parity.json").read_text())
    assert report["parity"] and report["network"] == "TorchScript" and report["max_rel_diff"] <= 1e-5
    assert cnn.read((tmp_path / "ts.cnn").read_bytes()).layers[3].type == fmt.ADD

    (tmp_path / "bad.onnx").write_bytes(helper_graph(np.random.default_rng(1)).SerializeToString()[:-30])
    assert cli.main(["convert", str(tmp_path / "bad.onnx"), "--test-set", str(tmp_path / "test.npz")]) == 1
    assert "bad.onnx" in capsys.readouterr().err
    assert cli.main(["convert", str(tmp_path / "net.onnx"), "--dtype", "int8"]) == 1
    assert "--calibration" in capsys.readouterr().err
