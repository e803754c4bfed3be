"""`tinysense train`: features by the device's C code, group-aware CV over model sizes, accuracy vs device cost."""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tinysense import datasets, reports, training
from tinysense.cnn import train as cnn_train
from tinysense.errors import CommandError

NAME = "train"
HELP = ("train a tree model on sensor recordings with the device's C features (or a CNN on images with --model cnn); "
        "report accuracy vs flash/RAM/time")


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers, like 5,10,20")
    return values


def _size(text: str) -> tuple[int, int]:
    h, sep, w = text.lower().partition("x")
    try:
        size = (int(h), int(w)) if sep else (int(h), int(h))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 32x32") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive sizes, like 32x32")
    return size


def _leaves(text: str) -> list[int | None]:
    return [None if v.strip() in ("none", "0") else _ints(v)[0] for v in text.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="folder of .npy recordings, a .csv/.parquet/.npz file, or a bundled "
                        f"example: {', '.join(datasets.BUILTIN)}")
    parser.add_argument("--output", "-o", type=Path, default=Path("tinysense-model"),
                        help="folder for model.joblib, model.trees, model.json, test.npz and the reports "
                             "(default tinysense-model)")
    data = parser.add_argument_group("data")
    data.add_argument("--labels", type=Path, help="Label Studio CSV export that relabels .npy recordings")
    data.add_argument("--subset", type=Path, help="use only these recordings: a text file of names, or a "
                      ".csv/.parquet with a 'file' column")
    data.add_argument("--samplerate", type=float, help="sample rate in Hz (default: the dataset's, else 100)")
    data.add_argument("--classes", type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
                      help="the expected labels, comma-separated: any other label is an error")
    data.add_argument("--exclude-label", action="append", default=[], metavar="LABEL",
                      help="drop recordings with this label (e.g. mixed); repeatable")
    data.add_argument("--window", type=int, help="window length in samples (default: the shortest recording)")
    data.add_argument("--hop", type=int, help="hop between windows in samples (default: the window length)")
    data.add_argument("--no-spectral", dest="spectral", action="store_false",
                      help="time-domain features only (no FFT features)")
    search = parser.add_argument_group("validation and search")
    search.add_argument("--group-by", choices=datasets.GROUP_KEYS, default="file",
                        help="windows of one group never sit on both sides of a split (default file)")
    search.add_argument("--cv", choices=("shuffle", "kfold"), default="shuffle",
                        help="GroupShuffleSplit (default) or StratifiedGroupKFold")
    search.add_argument("--splits", type=int, default=5, help="number of CV splits (default 5)")
    search.add_argument("--test-size", type=float, default=0.25, help="test fraction of groups for --cv shuffle")
    search.add_argument("--model", choices=[*sorted(training.MODEL_TYPES), "cnn"], default="rf",
                        help="rf: random forest (default), et: extra trees, dt: one decision tree, cnn: a small "
                             "convolutional network on images (see the cnn options)")
    search.add_argument("--n-estimators", type=_ints, default=[5, 10], help="trees per candidate (default 5,10)")
    search.add_argument("--max-leaf-nodes", type=_leaves, default=[16, 64],
                        help="leaf limits per candidate, 'none' for unlimited (default 16,64)")
    search.add_argument("--min-samples-leaf", type=_ints, default=[1], help="(default 1)")
    search.add_argument("--class-weight", choices=("none", "balanced"), default="none")
    search.add_argument("--tolerance", type=float, default=0.0,
                        help="choose the smallest model within this f1 of the best (default 0: the best)")
    search.add_argument("--no-instructions", dest="instructions", action="store_false",
                        help="skip the callgrind instruction counts (faster)")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--jobs", type=int, default=1, help="CPU cores for fitting (default 1)")
    images = parser.add_argument_group(
        "cnn (--model cnn): DATASET is a folder with a subfolder of .pgm/.ppm/.png images per label, an .npz of "
        f"X (N x H x W [x C] uint8) and y, or one of {', '.join(cnn_train.BUILTIN)}; needs PyTorch (CPU)")
    images.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    images.add_argument("--conv", type=_ints, default=[8, 16],
                        help="channels of each 3x3 conv + BatchNorm + ReLU + 2x2 max pool block (default 8,16)")
    images.add_argument("--input-size", type=_size, metavar="HxW",
                        help="model input size; images of another size are resized as the device does (default: "
                             "the images' size)")
    images.add_argument("--normalize", choices=("minmax", "mean_std"),
                        help="brightness normalisation the device applies before the model (tinysense_image)")
    images.add_argument("--batch-size", type=int, default=64)
    images.add_argument("--lr", type=float, default=0.005, help="Adam learning rate (default 0.005)")
    images.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (default 1; 1 is reproducible)")
    images.add_argument("--float32", action="store_true", help="also write the float32 model (model-float32.tscn)")


def _load(args: argparse.Namespace) -> datasets.Dataset:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", datasets.DatasetWarning)
        dataset = datasets.load(args.dataset, labels=args.labels, subset=args.subset, samplerate=args.samplerate)
    for warning in caught:
        print(f"tinysense train: warning: {warning.message}", file=sys.stderr)
    return datasets.select_labels(dataset, args.classes, args.exclude_label)


def _options(args: argparse.Namespace) -> training.Options:
    if args.splits < 1 or not 0.0 < args.test_size < 1.0:
        raise CommandError("--splits must be >= 1 and --test-size between 0 and 1; fix the values")
    return training.Options(
        window=args.window, hop=args.hop, group_by=args.group_by, cv=args.cv, n_splits=args.splits,
        test_size=args.test_size, model_type=args.model, n_estimators=args.n_estimators,
        max_leaf_nodes=args.max_leaf_nodes, min_samples_leaf=args.min_samples_leaf,
        class_weight=None if args.class_weight == "none" else args.class_weight, tolerance=args.tolerance,
        instructions=args.instructions, spectral=args.spectral, seed=args.seed, n_jobs=args.jobs)


def _outputs(result: training.Result) -> dict[str, bytes]:
    import joblib
    from sklearn.metrics import confusion_matrix

    meta = result.metadata()
    model = io.BytesIO()
    joblib.dump(result.chosen.estimator, model)
    test = io.BytesIO()
    np.savez(test, X_test=result.X_test, y_test=result.y_test, groups=result.prepared.groups[result.test_index])
    matrix = confusion_matrix(result.y_test, result.test_predictions(), labels=result.classes)
    title = f"held-out test: f1_micro {meta['test']['f1_micro']:.3f}"
    return {
        "model.joblib": model.getvalue(),
        "model.trees": result.chosen.device_model,
        "model.json": (json.dumps(meta, indent=2) + "\n").encode(),
        "test.npz": test.getvalue(),
        "pareto.md": reports.pareto_markdown(result.candidates, result.chosen).encode(),
        "pareto.csv": reports.pareto_csv(result.candidates).encode(),
        "pareto.png": reports.pareto_png(result.candidates, result.chosen),
        "confusion.png": reports.confusion_png(matrix, result.classes, title),
    }


def _run_cnn(args: argparse.Namespace) -> int:
    if args.epochs < 1 or args.batch_size < 1 or args.threads < 1 or not 0.0 < args.test_size < 1.0:
        raise CommandError("--epochs, --batch-size and --threads must be >= 1 and --test-size between 0 and 1; "
                           "fix the values")
    cnn_train.require_torch()
    data = cnn_train.load_images(args.dataset, args.input_size, args.normalize)
    options = cnn_train.Options(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, conv=tuple(args.conv),
                                test_size=args.test_size, seed=args.seed, threads=args.threads, float32=args.float32)
    h, w, _ = data.images.shape[1:]
    print(f"{data.name}: {len(data.y)} images {h}x{w} gray, classes {', '.join(data.classes)}")
    with tqdm(total=options.epochs, desc="train cnn", unit="epoch", disable=None) as bar:
        def progress(_epoch: int, loss: float) -> None:
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.update(1)

        result = cnn_train.train(data, options, args.normalize, progress)
    files = result.files()
    reports.write_outputs(args.output, files)
    print(result.report(), end="")
    drop = result.float_accuracy - result.int8_accuracy
    if drop > 0.01:
        print(f"tinysense train: warning: int8 loses {100 * drop:.1f} percentage points against float32; train "
              "longer, or ship the float32 model (--float32)", file=sys.stderr)
    print(f"wrote {args.output}/: {', '.join(files)}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.model == "cnn":
        return _run_cnn(args)
    dataset = _load(args)
    options = _options(args)
    n_candidates = len(args.n_estimators) * len(args.max_leaf_nodes) * len(args.min_samples_leaf)
    with tqdm(total=n_candidates * (options.n_splits + 1), desc="train", unit="fit", disable=None) as bar:
        result = training.train(dataset, options, progress=lambda _: bar.update(1))
    for note in result.notes:
        print(f"tinysense train: note: {note}", file=sys.stderr)
    files = _outputs(result)
    reports.write_outputs(args.output, files)
    meta = json.loads(files["model.json"])
    spec = result.prepared.spec
    windowing = f"windows of {spec.window} hop {spec.hop} at {spec.samplerate:g} Hz, " if spec.kind == "c" else ""
    print(f"{dataset.name}: {len(dataset)} recordings, {len(result.prepared.y)} rows, {windowing}"
          f"{result.prepared.X.shape[1]} features ({'C features in the host firmware' if spec.kind == 'c' else 'raw'})"
          f", classes {', '.join(result.classes)}")
    print(reports.pareto_markdown(result.candidates, result.chosen), end="")
    cv, test, cost = meta["cv"], meta["test"], meta["cost"]
    instructions = cost["instructions_per_inference"]
    print(f"chosen: {meta['model']['type']} {result.chosen.params}: CV test f1_micro {cv['test_f1_mean']:.3f} over "
          f"{cv['splits']} group splits; held-out test f1_micro {test['f1_micro']:.3f} ({test['windows']} windows, "
          f"{test['groups']} groups); {cost['flash_bytes']} B flash, {cost['ram_bytes']} B RAM, "
          f"{'n/a' if instructions is None else f'{instructions:,.0f}'} instructions/inference")
    print(f"wrote {args.output}/: {', '.join(files)}")
    return 0
