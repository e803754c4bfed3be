"""The image classifier from the host tool's side: `tinysense train --model cnn` on an image folder (PNG and PGM,
resized the device's way), `simulate` on camera frames (with and without a config: labels, threshold, rate limit),
`bundle` of the CNN with its imageclass section taken from the model metadata, and the errors that say what to do.

Three digits of scikit-learn (8x8) stand in for a camera's subject: saved as 16x16 images for training and as
96x96 camera frames (each pixel a 12x12 block, so the device's area downscale gives the 8x8 digit back).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tinysense import cnn
from tinysense.cli import main
from tinysense.cnn import train as cnn_train
from tinysense.device_config import imageclass_section_from_model
from tinysense.imagefiles import read_image, write_pnm
from tinysense.littlefs_image import read_files

pytest.importorskip("torch", reason="torch is not installed (pip install torch, CPU build)")

NAMES = {0: "zero", 1: "one", 2: "two"}


def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, list(NAMES))
    return np.round(X[keep] * 255.0 / 16.0).astype(np.uint8).reshape(-1, 8, 8), y[keep]


def save_png(path: Path, image: np.ndarray) -> None:
    import matplotlib.image

    matplotlib.image.imsave(path, image, cmap="gray", vmin=0, vmax=255)  # RGBA PNG: gray in all three channels


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("imageclass")
    images, y = digits()
    folder = root / "photos"
    for k, (image, label) in enumerate(zip(images, y, strict=True)):
        sub = folder / NAMES[int(label)]
        sub.mkdir(parents=True, exist_ok=True)
        big = np.kron(image, np.ones((2, 2), np.uint8))
        if k % 2:
            save_png(sub / f"{k:04d}.png", big)
        else:
            write_pnm(sub / f"{k:04d}.pgm", big)
    out = root / "model"
    assert main(["train", str(folder), "--model", "cnn", "--input-size", "8x8", "--epochs", "6", "--float32",
                 "-o", str(out)]) == 0
    return {"root": root, "folder": folder, "out": out, "images": images, "y": y}


def test_train_cnn_writes_model_metadata_and_reports(trained: dict[str, object],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = trained["out"]
    assert isinstance(out, Path)
    names = {p.name for p in out.iterdir()}
    assert {"model.tscn", "model-float32.tscn", "model.json", "report.md", "test.npz", "confusion.png"} <= names
    meta = json.loads((out / "model.json").read_text())
    assert meta["labels"] == ["one", "two", "zero"] and meta["input_shape"] == [8, 8, 1]  # folder names, sorted
    test = meta["test"]
    assert test["int8_logits_mismatches"] == 0 and test["int8_accuracy"] >= 0.9
    assert abs(test["int8_accuracy"] - test["float_accuracy"]) <= 0.02
    assert test["float32_max_diff"] <= 1e-5  # the float32 file on the C engine against PyTorch
    model = cnn.read((out / "model.tscn").read_bytes())
    assert meta["cost"]["flash_bytes"] == (out / "model.tscn").stat().st_size
    assert meta["cost"]["arena_bytes"] == cnn.arena_size(model) and meta["cost"]["macs"] == cnn_train.macs(model)
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| int8 (device, C engine) |" in (out / "report.md").read_text()
    with np.load(out / "test.npz") as t:
        assert t["X_test"].shape[1:] == (8, 8, 1) and len(t["X_test"]) == len(t["y_test"])


def test_images_are_resized_the_devices_way(trained: dict[str, object], tmp_path: Path) -> None:
    folder = trained["folder"]
    assert isinstance(folder, Path)
    data = cnn_train.load_images(folder, (8, 8))
    files = sorted((folder / "zero").iterdir())
    first = read_image(files[0])[:, :, :1].astype(np.int64)  # 16x16: the device averages 2x2 blocks, half up
    want = (first.reshape(8, 2, 8, 2).sum(axis=(1, 3)) + 2) // 4
    first_zero = np.flatnonzero(data.y == data.classes.index("zero"))[0]
    assert np.array_equal(data.images[first_zero][:, :, 0], want)
    # --normalize minmax: the device's stretch (image.h: floor((510 (x - lo) + (hi - lo)) / (2 (hi - lo))))
    stretched = cnn_train.load_images(folder, (8, 8), normalize="minmax").images[first_zero][:, :, 0].astype(np.int64)
    lo, hi = want.min(), want.max()
    assert np.array_equal(stretched, (510 * (want - lo) + (hi - lo)) // (2 * (hi - lo)))
    meta = {"format": "tinysense-cnn/1", "labels": ["a", "b"], "input_shape": [8, 8, 1], "normalize": "minmax"}
    section = imageclass_section_from_model(meta, "m.json")
    assert section == {"labels": ["a", "b"], "input": [8, 8, 1], "normalize": "minmax"}
    # an .npz of N x H x W uint8 with string labels
    images, y = digits()
    np.savez(tmp_path / "d.npz", X=images, y=np.array([NAMES[int(v)] for v in y]))
    npz = cnn_train.load_images(tmp_path / "d.npz")
    assert npz.classes == ["one", "two", "zero"] and npz.images.shape == (len(y), 8, 8, 1)
    assert np.array_equal(npz.images[:, :, :, 0], images)


def frames(root: Path, images: np.ndarray, pick: list[int], name: str, png: bool = False) -> list[Path]:
    d = root / name
    d.mkdir()
    paths = []
    for k, i in enumerate(pick):
        frame = np.kron(images[i], np.ones((12, 12), np.uint8))
        path = d / f"{k:03d}.{'png' if png else 'pgm'}"
        if png:
            save_png(path, frame)
        else:
            write_pnm(path, frame)
        paths.append(path)
    return paths


def predicted(out: Path, images: np.ndarray) -> tuple[list[str], np.ndarray]:
    meta = json.loads((out / "model.json").read_text())
    probs = cnn.reference.run_int8(cnn.read((out / "model.tscn").read_bytes()), images[..., None])
    return [meta["labels"][k] for k in np.argmax(probs, axis=1)], probs.max(axis=1)


def published(printed: str) -> list[dict[str, object]]:
    return [json.loads(line.split("\t")[2]) for line in printed.splitlines() if "/imageclass/class\t" in line]


def test_simulate_frames_config_and_bundle(trained: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    root, out, images = trained["root"], trained["out"], trained["images"]
    assert isinstance(root, Path) and isinstance(out, Path) and isinstance(images, np.ndarray)
    capsys.readouterr()
    pick = list(range(0, 60, 5))
    want, confidence = predicted(out, images[pick])
    # no config: every frame published, at 1 frame/s, PNG frames converted on the way
    frames(root, images, pick, "png", png=True)
    assert main(["simulate", str(root / "png"), "--model", str(out)]) == 0
    printed = capsys.readouterr().out
    msgs = published(printed)
    assert [m["class"] for m in msgs] == want and [m["t"] for m in msgs] == [1000 * k for k in range(len(pick))]
    np.testing.assert_allclose([m["confidence"] for m in msgs], confidence, atol=1e-6)
    assert "png/000.png" not in printed and "\t" in printed and "000.png\ttinysense/imageclass/class" in printed
    assert " 0 bytes allocated" in printed
    # a config: threshold and at most 2 messages per 4 frames (2 s at 2 frames/s)
    paths = frames(root, images, pick, "pgm")
    config = root / "config.json"
    threshold = float(np.sort(confidence)[3])  # the 3 least confident frames fall under it
    config.write_text(json.dumps({"app": "imageclass", "sample_rate": 2, "mqtt": {"topic_prefix": "lab/cam1"},
                                  "imageclass": {"threshold": threshold, "interval_s": 2, "max_messages": 2}}))
    assert main(["simulate", *map(str, paths), "--model", str(out), "--config", str(config), "-q"]) == 0
    expect = []
    for window in range(0, len(pick), 4):
        over = [k for k in range(window, min(window + 4, len(pick))) if confidence[k] >= threshold]
        expect += over[:2]
    assert f"simulate: {len(expect)} messages from {len(pick)} camera frames" in capsys.readouterr().out
    out_csv = root / "out.csv"
    assert main(["simulate", *map(str, paths), "--model", str(out), "--config", str(config), "-o",
                 str(out_csv)]) == 0
    msgs = published(capsys.readouterr().out)
    assert [m["t"] for m in msgs] == [500 * k for k in expect] and [m["class"] for m in msgs] == [want[k] for k in
                                                                                                  expect]
    rows = out_csv.read_text().splitlines()
    assert rows[1].startswith(f"{expect[0]:03d}.pgm,0,") and len(rows) == 1 + len(expect)
    # bundle: the imageclass section's labels and input come from the model metadata beside model.tscn
    fs = root / "fs.bin"
    assert main(["bundle", "--flash-size", "4MB", "--config", str(config), "--model", str(out / "model.tscn"),
                 "-o", str(fs)]) == 0
    from tinysense.littlefs_image import geometry_of_image

    image = fs.read_bytes()
    files = read_files(image, geometry_of_image(len(image)))
    stored = json.loads(files["/config.json"])
    assert stored["imageclass"]["labels"] == ["one", "two", "zero"] and stored["imageclass"]["input"] == [8, 8, 1]
    assert stored["models"] == ["/models/model.tscn"]
    assert files["/models/model.tscn"] == (out / "model.tscn").read_bytes()
    capsys.readouterr()
    assert main(["simulate", *map(str, paths), "--image", str(fs)]) == 0
    again = published(capsys.readouterr().out)
    assert again == msgs


def test_simulate_rgb565_camera(trained: dict[str, object], capsys: pytest.CaptureFixture[str]) -> None:
    """Colour PPM frames captured as RGB565 (big-endian, 5/6/5 bits) and turned gray by the app (tinysense_image):
    the classes equal the model's on the same gray conversion and downscale computed here."""
    root, out, images = trained["root"], trained["out"], trained["images"]
    assert isinstance(root, Path) and isinstance(out, Path) and isinstance(images, np.ndarray)
    d = root / "colour"
    d.mkdir()
    pick = list(range(1, 40, 4))
    inputs = []
    for k, i in enumerate(pick):
        v = np.kron(images[i], np.ones((12, 12), np.uint8)).astype(np.uint32)
        rgb = np.stack([v, (v * 3) // 5, 255 - v // 2], axis=2)  # a tinted digit
        write_pnm(d / f"{k:03d}.ppm", rgb.astype(np.uint8))
        r5, g6, b5 = rgb[:, :, 0] >> 3, rgb[:, :, 1] >> 2, rgb[:, :, 2] >> 3  # what RGB565 keeps
        r8, g8, b8 = r5 << 3 | r5 >> 2, g6 << 2 | g6 >> 4, b5 << 3 | b5 >> 2  # image.h's expansion
        gray = (77 * r8 + 150 * g8 + 29 * b8 + 128) >> 8
        inputs.append((gray.reshape(8, 12, 8, 12).sum(axis=(1, 3)) + 72) // 144)  # 12x12 area mean, half up
    want, confidence = predicted(out, np.stack(inputs).astype(np.uint8))
    config = root / "rgb.json"
    config.write_text(json.dumps({"app": "imageclass", "imageclass": {"threshold": 0, "interval_s": 1,
                                                                      "pixel_format": "RGB565"}}))
    capsys.readouterr()
    assert main(["simulate", str(d), "--model", str(out), "--config", str(config)]) == 0
    msgs = published(capsys.readouterr().out)
    assert [m["class"] for m in msgs] == want
    np.testing.assert_allclose([m["confidence"] for m in msgs], confidence, atol=1e-6)  # the same pixels went in


def test_errors_say_what_to_do(trained: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    out, images = trained["out"], trained["images"]
    assert isinstance(out, Path) and isinstance(images, np.ndarray)

    def error(argv: list[str]) -> str:
        capsys.readouterr()
        assert main(argv) == 1
        return capsys.readouterr().err

    odd = tmp_path / "odd"
    odd.mkdir()
    write_pnm(odd / "a.pgm", np.zeros((50, 60), np.uint8))
    assert "not a camera frame size" in error(["simulate", str(odd), "--model", str(out)])
    write_pnm(odd / "b.pgm", np.zeros((96, 96), np.uint8))
    assert "resize the images to one size" in error(["simulate", str(odd), "--model", str(out)])
    assert "images need a model" in error(["simulate", str(odd)])
    one = tmp_path / "one" / "only"
    one.mkdir(parents=True)
    write_pnm(one / "a.pgm", images[0])
    assert "a subfolder per label" in error(["train", str(tmp_path / "one"), "--model", "cnn"])
    np.savez(tmp_path / "bad.npz", X=images)
    assert "needs arrays X" in error(["train", str(tmp_path / "bad.npz"), "--model", "cnn"])
    mixed = tmp_path / "mixed"
    for label, size in (("a", 8), ("b", 9)):
        (mixed / label).mkdir(parents=True)
        write_pnm(mixed / label / "x.pgm", np.zeros((size, size), np.uint8))
    assert "--input-size HxW" in error(["train", str(mixed), "--model", "cnn"])
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    assert "pip install torch" in error(["train", "digits", "--model", "cnn"])
