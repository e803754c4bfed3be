"""emlearn_cnn (C engine in the host firmware) against the NumPy reference and PyTorch.

- int8: the C engine's outputs equal tinysense.cnn.reference's integer arithmetic bit for bit on every image.
- float32: within 1e-5 of PyTorch (and of the NumPy float reference).
- A digits 8x8 CNN trained here in a few seconds of CPU time (skipped without torch); hand-built random models
  cover every layer type without torch.
- Residual graphs (adds of earlier tensors, three arena slots) are checked the same way; tests/test_cnn_onnx.py
  converts them from torch.fx and ONNX.
- The loader is fuzzed with mutated model files in the sanitizer build (TINYSENSE_CNN_FUZZ cases, at least and by
  default 10,000, all in one firmware process: a few seconds).
"""

from __future__ import annotations

import os
import random
import struct
import time
import zlib

import numpy as np
import pytest
from fuzzing import edit_bytes, fuzz_cases, run_fuzz_script
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tinysense import cnn
from tinysense.cnn import model as fmt
from tinysense.cnn import pytorch as cnn_torch
from tinysense.cnn.model import Layer, Model
from tinysense.cnn.quantize import multiplier

FUZZ_CASES = int(os.environ.get("TINYSENSE_CNN_FUZZ", "10000"))
MIN_FUZZ_CASES = 10_000   # issue #8: at least 10,000 mutated files, every one a clear exception or a clean load

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - CI installs the pinned CPU torch
    torch = None  # type: ignore[assignment]

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed (pip install torch==2.13.0, CPU)")


def random_model(rng: np.random.Generator, input_shape: tuple[int, int, int] = (9, 10, 2)) -> Model:
    """A float model with every layer type: conv2d 5x5 same, conv2d 3x3 stride 2 valid, depthwise, pools, dense."""
    h, w, c = input_shape

    def conv(kind: int, k: int, s: int, p: int, co: int, act: int) -> Layer:
        nonlocal h, w, c
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        wshape = (co, k, k, c) if kind == fmt.CONV2D else (k, k, c)
        c = co
        weights = rng.normal(0, 0.4, wshape).astype(np.float32)
        return Layer(kind, (h, w, c), act, (k, k), (s, s), (p, p), weights, rng.normal(0, 0.1, co).astype(np.float32))

    def pool(kind: int, k: int, s: int, p: int) -> Layer:
        nonlocal h, w
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        return Layer(kind, (h, w, c), kernel=(k, k), stride=(s, s), pad=(p, p))

    layers = [conv(fmt.CONV2D, 5, 1, 2, 6, fmt.ACT_RELU), conv(fmt.DEPTHWISE, 3, 1, 1, 6, fmt.ACT_RELU6),
              pool(fmt.MAXPOOL, 2, 2, 1), conv(fmt.CONV2D, 3, 2, 0, 5, fmt.ACT_NONE), pool(fmt.AVGPOOL, 2, 1, 0)]
    flat = h * w * c
    layers += [Layer(fmt.FLATTEN, (1, 1, flat)),
               Layer(fmt.DENSE, (1, 1, 7), fmt.ACT_RELU, weights=rng.normal(0, 0.3, (7, flat)).astype(np.float32),
                     bias=rng.normal(0, 0.1, 7).astype(np.float32)),
               Layer(fmt.DENSE, (1, 1, 4), weights=rng.normal(0, 0.5, (4, 7)).astype(np.float32),
                     bias=np.zeros(4, np.float32))]
    return Model(fmt.FLOAT32, input_shape, layers, in_scale=1 / 255)


def gap_model(rng: np.random.Generator) -> Model:
    """conv -> global average pool -> flatten -> dense -> softmax."""
    w = rng.normal(0, 0.5, (8, 3, 3, 1)).astype(np.float32)
    return Model(fmt.FLOAT32, (8, 8, 1), [
        Layer(fmt.CONV2D, (8, 8, 8), fmt.ACT_RELU, (3, 3), (1, 1), (1, 1), w, rng.normal(0, .1, 8).astype(np.float32)),
        Layer(fmt.GLOBAL_AVGPOOL, (1, 1, 8)),
        Layer(fmt.FLATTEN, (1, 1, 8)),
        Layer(fmt.DENSE, (1, 1, 5), weights=rng.normal(0, 1, (5, 8)).astype(np.float32), bias=np.zeros(5, np.float32)),
        Layer(fmt.SOFTMAX, (1, 1, 5)),
    ], in_scale=1 / 255)


def residual_model(rng: np.random.Generator) -> Model:
    """A graph, not a chain: conv -> conv -> conv + shortcut (relu) -> depthwise + shortcut (in place), a 1x1 conv
    branch read from an older tensor (three live tensors), maxpool, global average pool, flatten, dense."""
    def conv(kind: int, k: int, c_in: int, c_out: int, act: int, src: int | None = None) -> Layer:
        wshape = (c_out, k, k, c_in) if kind == fmt.CONV2D else (k, k, c_in)
        return Layer(kind, (8, 8, c_out), act, (k, k), (1, 1), ((k - 1) // 2, (k - 1) // 2),
                     rng.normal(0, 0.5 / k, wshape).astype(np.float32), rng.normal(0, 0.1, c_out).astype(np.float32),
                     src=src)

    layers = [conv(fmt.CONV2D, 3, 2, 6, fmt.ACT_RELU),                       # t1
              conv(fmt.CONV2D, 3, 6, 6, fmt.ACT_RELU),                       # t2
              conv(fmt.CONV2D, 3, 6, 6, fmt.ACT_NONE),                       # t3
              Layer(fmt.ADD, (8, 8, 6), fmt.ACT_RELU, src2=1),               # t4 = relu(t3 + t1)
              conv(fmt.DEPTHWISE, 3, 6, 6, fmt.ACT_RELU6),                   # t5
              Layer(fmt.ADD, (8, 8, 6), src2=4),                             # t6 = t5 + t4
              conv(fmt.CONV2D, 1, 6, 6, fmt.ACT_NONE, src=2),                # t7 = conv1x1(t2)
              Layer(fmt.ADD, (8, 8, 6), fmt.ACT_RELU, src=6, src2=7),        # t8 = relu(t6 + t7)
              Layer(fmt.MAXPOOL, (4, 4, 6), kernel=(2, 2), stride=(2, 2)),
              Layer(fmt.GLOBAL_AVGPOOL, (1, 1, 6)),
              Layer(fmt.FLATTEN, (1, 1, 6)),
              Layer(fmt.DENSE, (1, 1, 4), weights=rng.normal(0, 0.5, (4, 6)).astype(np.float32),
                    bias=rng.normal(0, 0.1, 4).astype(np.float32))]
    return Model(fmt.FLOAT32, (8, 8, 2), layers, in_scale=1 / 255)


def pool_model(rng: np.random.Generator) -> Model:
    """Pools over more channels than the engine reduces at once (70 > 64) with border windows of every size:
    1x1 conv 2 -> 70, avgpool 3x3 stride 2 pad 1 (averages of 4, 6 and 9: rounding of negative and positive
    sums), maxpool 3x3 stride 1 pad 1, global average pool over 70 channels, flatten, dense."""
    layers = [Layer(fmt.CONV2D, (7, 9, 70), fmt.ACT_NONE, (1, 1), (1, 1), (0, 0),
                    rng.normal(0, 0.8, (70, 1, 1, 2)).astype(np.float32), rng.normal(0, 0.2, 70).astype(np.float32)),
              Layer(fmt.AVGPOOL, (4, 5, 70), kernel=(3, 3), stride=(2, 2), pad=(1, 1)),
              Layer(fmt.MAXPOOL, (4, 5, 70), fmt.ACT_RELU, kernel=(3, 3), stride=(1, 1), pad=(1, 1)),
              Layer(fmt.GLOBAL_AVGPOOL, (1, 1, 70)),
              Layer(fmt.FLATTEN, (1, 1, 70)),
              Layer(fmt.DENSE, (1, 1, 3), weights=rng.normal(0, 0.3, (3, 70)).astype(np.float32),
                    bias=rng.normal(0, 0.1, 3).astype(np.float32))]
    return Model(fmt.FLOAT32, (7, 9, 2), layers, in_scale=1 / 255, in_offset=-128 / 255)


def big_pool_model(rng: np.random.Generator) -> Model:
    """Large windows: 1x1 conv 1 -> 40, avgpool 12x12 padding 5 (counts 49 to 144: the engine's row path divides
    counts over 128 in int32), global average pool over 16x15 (more than 512 columns x channels: the per-window
    path), dense."""
    layers = [Layer(fmt.CONV2D, (17, 16, 40), fmt.ACT_NONE, (1, 1), (1, 1), (0, 0),
                    rng.normal(0, 0.8, (40, 1, 1, 1)).astype(np.float32), rng.normal(0, 0.2, 40).astype(np.float32)),
              Layer(fmt.AVGPOOL, (16, 15, 40), kernel=(12, 12), stride=(1, 1), pad=(5, 5)),
              Layer(fmt.GLOBAL_AVGPOOL, (1, 1, 40)),
              Layer(fmt.FLATTEN, (1, 1, 40)),
              Layer(fmt.DENSE, (1, 1, 3), weights=rng.normal(0, 0.3, (3, 40)).astype(np.float32),
                    bias=rng.normal(0, 0.1, 3).astype(np.float32))]
    return Model(fmt.FLOAT32, (17, 16, 1), layers, in_scale=1 / 255, in_offset=-128 / 255)


def images_for(model: Model, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *model.input_shape), dtype=np.uint8)


# ---- models built here: every layer type, no torch needed ----

@pytest.mark.parametrize("variant", ["standard", "32"])
def test_random_models_int8_bit_exact_and_float_close(variant: str) -> None:
    rng = np.random.default_rng(1)
    for build in (random_model, gap_model, residual_model, pool_model, big_pool_model):
        float_model = build(rng)
        images = images_for(float_model, 60)
        float_ref = cnn.reference.run_float(float_model, images)
        got = cnn.run_on_host(cnn.write(float_model), images, variant=variant)
        np.testing.assert_allclose(got, float_ref, atol=1e-5, rtol=1e-5)
        int8_model = cnn.quantize(float_model, images[:30])
        data = cnn.write(int8_model)
        assert cnn.read(data).layers[0].weights.dtype == np.int8
        expected = cnn.reference.run_int8(int8_model, images)
        got = cnn.run_on_host(data, images, variant=variant)
        if int8_model.layers[-1].type == fmt.SOFTMAX:   # float32 softmax: expf vs numpy's exp, within an ulp or two
            np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
            pre = cnn.reference.int8_tensors(int8_model, images)[-1]
            assert np.array_equal(np.argmax(got, axis=1), np.argmax(pre.reshape(len(images), -1), axis=1))
        else:
            assert np.array_equal(got.view(np.uint32), expected.view(np.uint32)), np.abs(got - expected).max()
        # quantisation error stays small against the float model on these random weights
        scale = np.abs(float_ref).max()
        assert np.abs(expected - float_ref).max() <= 0.2 * max(scale, 1e-3)


def test_multiplier_and_rounding() -> None:
    for scale in (0.5, 0.999999, 1e-3, 2.0**-40, 0.75, 3.0):
        m, s = multiplier(scale)
        assert 0 <= m < 2**31 and 1 <= s <= 62
        assert abs(m * 2.0**-s - scale) <= scale * 2**-30
    assert multiplier(0.0) == (0, 1)
    with pytest.raises(ValueError, match="too large"):
        multiplier(2.0**31)


def test_file_roundtrip_and_arena() -> None:
    model = cnn.quantize(random_model(np.random.default_rng(2)), images_for(random_model(np.random.default_rng(2)), 8))
    data = cnn.write(model)
    assert data[:4] == b"TSCN" and len(data) % 4 == 0
    again = cnn.read(data)
    assert cnn.write(again) == data
    assert struct.unpack_from("<I", data, 16)[0] == cnn.arena_size(model) == 2 * ((9 * 10 * 6 + 15) // 16 * 16)
    with pytest.raises(cnn.ModelFormatError, match="CRC32"):
        cnn.read(data[:40] + bytes([data[40] ^ 1]) + data[41:])
    assert data[4] == 1   # a chain stays version 1 (two alternating slots), readable by older firmware too
    residual = residual_model(np.random.default_rng(2))
    graph = cnn.quantize(residual, images_for(residual, 8))
    data = cnn.write(graph)
    assert data[4] == 2 and struct.unpack_from("<H", data, 26)[0] == fmt.n_slots(graph) == 3
    assert cnn.write(cnn.read(data)) == data
    assert struct.unpack_from("<I", data, 16)[0] == cnn.arena_size(graph) == 3 * 8 * 8 * 6


# ---- a digits 8x8 CNN trained here ----

_digits: dict[str, object] = {}


def digits_cnn():
    if not _digits:
        X, y = load_digits(return_X_y=True)
        images = np.round(X * 255.0 / 16.0).astype(np.uint8).reshape(-1, 8, 8, 1)
        x_train, x_test, y_train, y_test = train_test_split(images, y, test_size=0.3, random_state=0, stratify=y)
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding="same"), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU6(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding="valid"), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AvgPool2d(2, stride=1),
            nn.Flatten(), nn.Dropout(0.1),
            nn.Linear(16, 10),
        )
        xt = torch.from_numpy((x_train.astype(np.float32) / 255).transpose(0, 3, 1, 2).copy())
        yt = torch.from_numpy(y_train)
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        net.train()
        for _ in range(25):
            for i in range(0, len(xt), 128):
                opt.zero_grad()
                nn.functional.cross_entropy(net(xt[i:i + 128]), yt[i:i + 128]).backward()
                opt.step()
        net.eval()
        _digits.update(net=net, x_train=x_train, x_test=x_test, y_test=y_test)
    return _digits


@needs_torch
@pytest.mark.parametrize("variant", ["standard", "32"])
def test_digits_cnn_float_within_1e5_of_torch_and_int8_bit_exact(variant: str) -> None:
    d = digits_cnn()
    net, x_test, y_test = d["net"], d["x_test"], d["y_test"]
    float_model = cnn.from_torch(net, (8, 8, 1))
    torch_out = cnn_torch.torch_forward(net, float_model, x_test)
    got = cnn.run_on_host(cnn.write(float_model), x_test, variant=variant)
    assert np.abs(got - torch_out).max() <= 1e-5, np.abs(got - torch_out).max()
    float_acc = float(np.mean(np.argmax(torch_out, axis=1) == y_test))
    assert float_acc >= 0.9, float_acc

    int8_model = cnn.quantize(float_model, d["x_train"][:300])
    expected = cnn.reference.run_int8(int8_model, x_test)
    got = cnn.run_on_host(cnn.write(int8_model), x_test, variant=variant)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))   # every test image, bit for bit
    int8_acc = float(np.mean(np.argmax(got, axis=1) == y_test))
    print(f"digits CNN: float {float_acc:.4f}, int8 {int8_acc:.4f}, {len(x_test)} test images")
    assert int8_acc >= float_acc - 0.02


@needs_torch
def test_softmax_model_and_converter_refusals() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 4, 5, stride=2, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 3), nn.Softmax(dim=1))
    model = cnn.from_torch(net, (12, 12, 1))
    images = images_for(model, 20)
    got = cnn.run_on_host(cnn.write(model), images)
    np.testing.assert_allclose(got, cnn_torch.torch_forward(net, model, images), atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(cnn_torch.UnsupportedModel, match="larger than 5x5"):
        cnn.from_torch(nn.Sequential(nn.Conv2d(1, 2, 7)), (12, 12, 1))
    with pytest.raises(cnn_torch.UnsupportedModel, match="BatchNorm2d.*must directly follow a conv2d"):
        cnn.from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.BatchNorm2d(2)), (12, 12, 1))
    with pytest.raises(cnn_torch.UnsupportedModel, match="Sigmoid"):
        cnn.from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sigmoid()), (12, 12, 1))
    with pytest.raises(cnn_torch.UnsupportedModel, match="groups=2"):
        cnn.from_torch(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), (12, 12, 4))


# ---- fuzzing the loader (emlearn_cnn.new) on mutated files, in the sanitizer build ----

FUZZ_SCRIPT = """\
import sys, array, emlearn_cnn
import fuzzcases


def exercise(m):
    h, w, c = m.input_shape()
    n_out = 1
    for d in m.output_dimensions():
        n_out *= d
    out = array.array('f', bytes(4 * n_out))
    for v in (0, 77, 255):
        m.run(bytes([v]) * (h * w * c), out)


fuzzcases.run(sys.argv[1], int(sys.argv[2]), emlearn_cnn.new, 'bad cnn model: ', exercise)
"""


def _recrc(data: bytearray) -> None:
    if len(data) >= 48:
        struct.pack_into("<I", data, 12, len(data))
        struct.pack_into("<I", data, 8, zlib.crc32(bytes(data[12:]), zlib.crc32(bytes(data[:8]))))


def mutate(seed: bytes, rng: random.Random) -> bytes:
    data = bytearray(seed)
    action = rng.randrange(6)
    if action == 0:
        return bytes(data[: rng.randrange(len(data))])
    n_layers = data[6]
    if action == 1:   # a header or layer-table field set to an interesting value, length and checksum fixed
        offset = rng.choice([4, 5, 6, 7, 16, 20, 22, 24, 26] + list(range(48, 48 + 32 * n_layers)))
        data[offset] = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 31, 64, 127, 128, 200, 255])
        _recrc(data)
        return bytes(data)
    edit_bytes(data, rng, ("set", "flip", "delete", "insert")[action - 2])
    if rng.random() < 0.7:
        _recrc(data)
    return bytes(data)


def fuzz_seeds() -> list[bytes]:
    rng = np.random.default_rng(5)
    seeds = []
    for build in (random_model, gap_model, residual_model, pool_model, big_pool_model):
        model = build(rng)
        seeds += [cnn.write(model), cnn.write(cnn.quantize(model, images_for(model, 8)))]
    return seeds


def test_fuzz_loader_in_sanitizer_build() -> None:
    seeds = fuzz_seeds()
    started = time.monotonic()
    _, loaded, rejected = run_fuzz_script(FUZZ_SCRIPT, fuzz_cases(seeds, mutate, FUZZ_CASES, seed=77))
    print(f"cnn fuzz: {FUZZ_CASES} files, {loaded} loaded / {rejected} rejected, {time.monotonic() - started:.1f} s")
    assert int(loaded) + int(rejected) == FUZZ_CASES >= MIN_FUZZ_CASES
    assert int(loaded) >= len(seeds) and int(rejected) > FUZZ_CASES // 2
