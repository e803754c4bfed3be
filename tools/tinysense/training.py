"""The training pipeline behind `tinysense train`, as small functions.

dataset → windows + labels + groups → features computed by the device's C code in the host firmware →
group-aware cross-validation of candidate model sizes → per-candidate accuracy (f1_micro) and device cost
(flash, RAM, instructions per inference) → Pareto front → the chosen model.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold
from sklearn.tree import DecisionTreeClassifier

from tinysense import costs, features, trees
from tinysense.datasets import Dataset, DatasetError
from tinysense.windowing import make_windows

MODEL_TYPES: dict[str, type] = {"rf": RandomForestClassifier, "et": ExtraTreesClassifier,
                                "dt": DecisionTreeClassifier}
MODEL_FORMAT = "tinysense-model/1"


@dataclass
class FeatureSpec:
    """How a window becomes a feature row; stored with the model so the device and `simulate` repeat it."""

    kind: str  # "c": tinysense_features in the host firmware; "raw": the rows are already features
    samplerate: float
    window: int = 0
    hop: int = 0
    sensors: list[list[int]] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    spectral: bool = True
    names: list[str] = field(default_factory=list)
    # the recordings are MPU6886 int16 counts at these sensors/ranges (tinysense.datasets.Dataset.imu), or None
    imu: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Prepared:
    X: np.ndarray  # (m, n_features) float32
    y: np.ndarray  # (m,) str labels
    groups: np.ndarray  # (m,) str group id
    spec: FeatureSpec


def window_features(windows: np.ndarray, spec: FeatureSpec, variant: str = "standard") -> np.ndarray:
    """Feature rows of (m, window, channels) windows: the C feature module per sensor, side by side."""
    parts = []
    for sensor in spec.sensors:
        parts.append(features.extract_on_host(windows[:, :, sensor], spec.samplerate, variant,
                                              spectral=spec.spectral))
    return np.hstack(parts) if parts else np.zeros((len(windows), 0), dtype=np.float32)


def feature_names(spec: FeatureSpec) -> list[str]:
    names: list[str] = []
    for sensor in spec.sensors:
        sensor_names = features.feature_names(len(sensor), spectral=spec.spectral)
        if len(spec.sensors) > 1:
            prefix = _common_prefix([spec.channels[i] for i in sensor])
            sensor_names = [f"{prefix}{n}" for n in sensor_names]
        names += sensor_names
    return names


def _common_prefix(channels: Sequence[str]) -> str:
    prefix = channels[0]
    for c in channels[1:]:
        while not c.startswith(prefix):
            prefix = prefix[:-1]
    return prefix.rstrip("xyz") if prefix else ""


def prepare(dataset: Dataset, *, window: int | None, hop: int | None, group_by: str,
            spectral: bool = True, variant: str = "standard") -> tuple[Prepared, list[str]]:
    """Feature rows, labels and group ids; and notes on recordings too short for a window."""
    if group_by not in dataset.groups:
        raise DatasetError(f"{dataset.name} has no {group_by!r} ids (it has {sorted(dataset.groups)}); "
                           "choose another --group-by")
    groups = dataset.groups[group_by]
    notes: list[str] = []
    if not dataset.is_timeseries:
        assert dataset.rows is not None
        X = np.asarray(dataset.rows, dtype=np.float32)
        names = [f"f{i}" for i in range(X.shape[1])]
        spec = FeatureSpec("raw", dataset.samplerate, names=names)
        return Prepared(X, dataset.labels, groups, spec), notes
    shortest = min(len(r) for r in dataset.recordings)
    window = window or shortest
    hop = hop or window
    if not features.MIN_WINDOW <= window <= features.MAX_WINDOW:
        raise DatasetError(f"--window {window} is out of range; use {features.MIN_WINDOW}..{features.MAX_WINDOW}")
    if hop < 1:
        raise DatasetError(f"--hop {hop} must be at least 1 sample")
    cut = make_windows(dataset.recordings, window, hop)
    for i, r in enumerate(dataset.recordings):
        if len(r) < window:
            notes.append(f"{dataset.groups['file'][i]}: {len(r)} samples, shorter than the {window}-sample window; "
                         "no windows")
    if len(cut.data) == 0:
        raise DatasetError(f"no recording of {dataset.name} is as long as --window {window}; use a shorter window")
    if dataset.imu is None and not all(np.issubdtype(np.asarray(r).dtype, np.integer) for r in dataset.recordings):
        # the device's features see the MPU6886's int16 counts: a model of physical units would misread them
        notes.append(f"{dataset.name}: the recordings are not integer counts; the device computes its features on "
                     "the MPU6886's int16 counts, so convert physical units to counts at the IMU's full-scale ranges "
                     "(tinysense.datasets.imu_counts) before training a model for the har app")
    spec = FeatureSpec("c", dataset.samplerate, window, hop, dataset.sensors, dataset.channels, spectral,
                       imu=dataset.imu)
    spec.names = feature_names(spec)
    X = window_features(cut.data, spec, variant)
    return Prepared(X, dataset.labels[cut.recording], groups[cut.recording], spec), notes


# ---------------------------------------------------------------------------------------------------------------
# Cross-validation and candidates


def group_splits(y: np.ndarray, groups: np.ndarray, *, cv: str, n_splits: int, test_size: float,
                 seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test index pairs that never put windows of one group on both sides."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise DatasetError(f"only {n_groups} group; group-aware validation needs at least 2 (choose another "
                           "--group-by or record more files)")
    if cv == "kfold":
        k = min(n_splits, n_groups)
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros(len(y)), y, groups))
    elif cv == "shuffle":
        splitter = GroupShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
        splits = list(splitter.split(np.zeros(len(y)), y, groups))
    else:
        raise ValueError(f"cv must be 'kfold' or 'shuffle', got {cv!r}")
    return [(np.asarray(a), np.asarray(b)) for a, b in splits]


def candidate_grid(n_estimators: Sequence[int], max_leaf_nodes: Sequence[int | None],
                   min_samples_leaf: Sequence[int]) -> list[dict[str, Any]]:
    return [{"n_estimators": n, "max_leaf_nodes": leaves, "min_samples_leaf": msl}
            for n, leaves, msl in itertools.product(n_estimators, max_leaf_nodes, min_samples_leaf)]


def make_estimator(model_type: str, params: dict[str, Any], *, class_weight: str | None, seed: int,
                   n_jobs: int = 1) -> Any:
    cls = MODEL_TYPES[model_type]
    kwargs = dict(params)
    if model_type == "dt":
        kwargs.pop("n_estimators", None)
    else:
        kwargs["n_jobs"] = n_jobs
    return cls(class_weight=class_weight, random_state=seed, **kwargs)


@dataclass
class Candidate:
    params: dict[str, Any]
    train_f1: list[float]
    test_f1: list[float]
    estimator: Any = None  # fitted on the first split's training part
    device_model: bytes = b""
    cost: costs.Cost | None = None
    pareto: bool = False

    @property
    def test_mean(self) -> float:
        return float(np.mean(self.test_f1))

    @property
    def test_std(self) -> float:
        return float(np.std(self.test_f1))

    @property
    def train_mean(self) -> float:
        return float(np.mean(self.train_f1))

    def label(self) -> str:
        p = self.params
        return f"{p.get('n_estimators', 1)}t/{p.get('max_leaf_nodes') or '∞'}l/{p.get('min_samples_leaf', 1)}m"


def evaluate(prepared: Prepared, grid: Sequence[dict[str, Any]], splits: Sequence[tuple[np.ndarray, np.ndarray]], *,
             model_type: str = "rf", class_weight: str | None = None, seed: int = 0, n_jobs: int = 1,
             progress: Callable[[str], None] = lambda _: None) -> list[Candidate]:
    """f1_micro on the training and test part of every split, for every candidate."""
    X, y = prepared.X, prepared.y
    out = []
    for params in grid:
        candidate = Candidate(params, [], [])
        for k, (train, test) in enumerate(splits):
            estimator = make_estimator(model_type, params, class_weight=class_weight, seed=seed, n_jobs=n_jobs)
            estimator.fit(X[train], y[train])
            candidate.train_f1.append(float(f1_score(y[train], estimator.predict(X[train]), average="micro")))
            candidate.test_f1.append(float(f1_score(y[test], estimator.predict(X[test]), average="micro")))
            if k == 0:
                candidate.estimator = estimator
            progress(candidate.label())
        out.append(candidate)
    return out


def device_features(X_train: np.ndarray) -> str:
    """'int' when every training feature is an int16 integer (smaller, exact), else 'float' (threshold table)."""
    return "int" if trees.choose_features(X_train, "auto") == trees.FEATURES_INT else "float"


def add_costs(candidates: Sequence[Candidate], X_train: np.ndarray, X_probe: np.ndarray, *,
              instructions: bool = True, variant: str = "standard",
              progress: Callable[[str], None] = lambda _: None) -> None:
    mode = device_features(X_train)
    for candidate in candidates:
        candidate.device_model = trees.convert(candidate.estimator, X_train, features=mode)
        candidate.cost = costs.model_cost(candidate.device_model, X_probe, instructions=instructions,
                                          variant=variant)
        progress(candidate.label())


def mark_pareto(candidates: Sequence[Candidate]) -> None:
    """A candidate is on the front when no other is at least as accurate and as small, and better in one."""
    for c in candidates:
        assert c.cost is not None
        c.pareto = not any(
            o is not c and o.cost is not None and o.test_mean >= c.test_mean
            and o.cost.flash_bytes <= c.cost.flash_bytes
            and (o.test_mean > c.test_mean or o.cost.flash_bytes < c.cost.flash_bytes)
            for o in candidates
        )


def choose(candidates: Sequence[Candidate], tolerance: float = 0.0) -> Candidate:
    """The smallest (flash) candidate whose mean test f1 is within `tolerance` of the best."""
    best = max(c.test_mean for c in candidates)
    eligible = [c for c in candidates if c.test_mean >= best - tolerance - 1e-12]
    return min(eligible, key=lambda c: (c.cost.flash_bytes if c.cost else 0, -c.test_mean))


# ---------------------------------------------------------------------------------------------------------------
# The whole pipeline


@dataclass
class Options:
    window: int | None = None
    hop: int | None = None
    group_by: str = "file"
    cv: str = "shuffle"
    n_splits: int = 5
    test_size: float = 0.25
    model_type: str = "rf"
    n_estimators: Sequence[int] = (5, 10)
    max_leaf_nodes: Sequence[int | None] = (16, 64)
    min_samples_leaf: Sequence[int] = (1,)
    class_weight: str | None = None
    tolerance: float = 0.0
    instructions: bool = True
    spectral: bool = True
    seed: int = 0
    n_jobs: int = 1
    variant: str = "standard"


@dataclass
class Result:
    dataset: Dataset
    prepared: Prepared
    candidates: list[Candidate]
    chosen: Candidate
    train_index: np.ndarray
    test_index: np.ndarray
    classes: list[str]
    notes: list[str]
    feature_instructions: float | None

    @property
    def X_test(self) -> np.ndarray:
        return self.prepared.X[self.test_index]

    @property
    def y_test(self) -> np.ndarray:
        return self.prepared.y[self.test_index]

    def test_predictions(self) -> np.ndarray:
        return self.chosen.estimator.predict(self.X_test)

    def metadata(self) -> dict[str, Any]:
        c = self.chosen
        assert c.cost is not None
        X_train = self.prepared.X[self.train_index]
        test_f1 = float(f1_score(self.y_test, self.test_predictions(), average="micro"))
        return {
            "format": MODEL_FORMAT,
            "dataset": self.dataset.name,
            "classes": self.classes,
            "features": self.prepared.spec.to_dict(),
            "device_features": device_features(X_train),
            "model": {"type": type(c.estimator).__name__, "params": c.params},
            "cv": {"splits": len(c.test_f1), "test_f1_micro": c.test_f1, "test_f1_mean": c.test_mean,
                   "train_f1_mean": c.train_mean},
            "test": {"windows": int(len(self.test_index)), "groups": int(len(np.unique(
                self.prepared.groups[self.test_index]))), "f1_micro": test_f1},
            "cost": {"flash_bytes": c.cost.flash_bytes, "ram_bytes": c.cost.ram_bytes,
                     "instructions_per_inference": c.cost.instructions,
                     "feature_instructions_per_window": self.feature_instructions},
        }


def train(dataset: Dataset, options: Options, progress: Callable[[str], None] = lambda _: None) -> Result:
    """Run the pipeline; the chosen model is fitted on the first split's training part, tested on its test part."""
    prepared, notes = prepare(dataset, window=options.window, hop=options.hop, group_by=options.group_by,
                              spectral=options.spectral, variant=options.variant)
    splits = group_splits(prepared.y, prepared.groups, cv=options.cv, n_splits=options.n_splits,
                          test_size=options.test_size, seed=options.seed)
    train_index, test_index = splits[0]
    if len(np.unique(prepared.y[train_index])) < 2:
        raise DatasetError("a training split holds only one class; record more groups per class or use --cv kfold")
    grid = candidate_grid(options.n_estimators, options.max_leaf_nodes, options.min_samples_leaf)
    if options.model_type == "dt":
        grid = [dict(g, n_estimators=1) for g in grid if g["n_estimators"] == options.n_estimators[0]]
    candidates = evaluate(prepared, grid, splits, model_type=options.model_type, class_weight=options.class_weight,
                          seed=options.seed, n_jobs=options.n_jobs, progress=progress)
    X_train = prepared.X[train_index]
    add_costs(candidates, X_train, prepared.X[test_index], instructions=options.instructions,
              variant=options.variant, progress=progress)
    mark_pareto(candidates)
    chosen = choose(candidates, options.tolerance)
    feature_cost = None
    if options.instructions and dataset.is_timeseries and prepared.spec.window:
        window = make_windows(dataset.recordings[:1], prepared.spec.window, prepared.spec.window).data
        if len(window):
            feature_cost = sum(costs.feature_instructions(window[0][:, sensor], prepared.spec.samplerate,
                                                          variant=options.variant, spectral=options.spectral) or 0.0
                               for sensor in prepared.spec.sensors) or None
    classes = [str(c) for c in chosen.estimator.classes_]
    return Result(dataset, prepared, candidates, chosen, train_index, test_index, classes, notes, feature_cost)
