"""What goes onto the device filesystem, and writing it as a verified LittleFS image.

Layout of the image (the vfs partition, mounted at / by the firmware):

    /main.py        the app's entry point (--main, or a generated one that starts the app named in config.json)
    /config.json    tinysense.device_config.DeviceConfig
    /models/<name>  each --model file
    /...            each --file SRC[:DEST] (DEST absolute; default /<basename of SRC>)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from tinysense.atomic import write_bytes_atomic
from tinysense.device_config import DeviceConfig, har_section_from_model, merge_app_section
from tinysense.errors import CommandError
from tinysense.littlefs_image import Geometry, build_image, verify_image
from tinysense.paths import REPO

NAME_MAX = 255

# Runs the frozen app `apps.<app>` with the parsed config; the firmware's apps expose main(config: dict).
# /main.py: runs the app named in /config.json under the frozen asyncio shell (apps.shell).
GENERATED_MAIN_PY = (REPO / "firmware" / "main_template.py").read_text()


def _read(path: Path, what: str, option: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{what} {path} does not exist; pass the right {option} path") from None
    except IsADirectoryError:
        raise CommandError(f"{what} {path} is a folder; pass a file to {option}") from None
    except OSError as error:
        raise CommandError(f"cannot read {what} {path} ({error.strerror}); check its permissions") from None


def device_path(text: str, option: str) -> str:
    """A normalised absolute path on the device, checked against LittleFS's name limits."""
    path = PurePosixPath(text)
    parts = [part for part in path.parts if part != "/"]
    if not path.is_absolute() or not parts or any(part in (".", "..") for part in parts):
        raise CommandError(f"{option}: device path {text!r} must be absolute, like /data/labels.txt; fix the path")
    for part in parts:
        if len(part.encode()) > NAME_MAX:
            raise CommandError(f"{option}: name {part[:40]!r}… is longer than {NAME_MAX} bytes; shorten it")
    return "/" + "/".join(parts)


def _add(files: dict[str, bytes], path: str, data: bytes, source: str) -> None:
    if path in files:
        raise CommandError(f"{source} would overwrite {path}, which is already in the bundle; give it another name")
    for parent in PurePosixPath(path).parents:
        if str(parent) in files:
            raise CommandError(f"{source}: {parent} is a file in the bundle and cannot also be a folder; rename one")
    if any(existing.startswith(path + "/") for existing in files):
        raise CommandError(f"{source}: {path} is a folder in the bundle and cannot also be a file; rename one")
    files[path] = data


def model_metadata(model: Path) -> tuple[dict[str, Any], Path] | None:
    """The metadata `tinysense train` wrote for a model file (<model>.json beside it), or None if there is none."""
    path = model.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CommandError(f"cannot read the model metadata {path} ({error}); copy the model.json train wrote "
                           "there again") from None
    if not isinstance(meta, dict):
        raise CommandError(f"{path} is not model metadata (not a JSON object); copy the model.json train wrote")
    return meta, path


HAR_REQUIRED = ("window", "hop", "classes")


def _no_metadata_warning(problem: str, models: Sequence[Path], what: str) -> str:
    """The warning for an app section that neither the user nor the model's metadata completes."""
    where = (f"no {models[0].with_suffix('.json')} (the model.json train wrote) to take {what} from" if models
             else "no --model")
    return (f"{problem} and there is {where}: the device will stop with a configuration error; bundle the model "
            f"with its metadata beside it (or give {what} in --config)")


def fill_app_section(data: dict[str, Any], models: Sequence[Path], rate_given: bool) -> list[str]:
    """Write the app's section of config `data` (a dict before validation) from the first model's metadata, so the
    image runs as it is: keys the user gave win, contradictions with the model are errors (naming both values), and
    sample_rate becomes the model's. Returns warnings (e.g. no metadata and no section: the device will refuse)."""
    if data.get("app") == "imageclass":
        return fill_imageclass_section(data, models)
    if data.get("app") != "har":
        return []
    user = dict(data.get("har") or {})
    found = model_metadata(models[0]) if models else None
    if found is None:
        missing = [key for key in HAR_REQUIRED if key not in user]
        if not missing:
            return []
        return [_no_metadata_warning(f"the har section lacks {', '.join(missing)}", models, "them")]
    meta, meta_path = found
    derived = har_section_from_model(meta, str(meta_path))
    rate = derived["samplerate"]
    if rate_given and data.get("sample_rate") != rate:
        raise CommandError(f"sample_rate is {data.get('sample_rate')!r} Hz but the model {meta_path} was trained at "
                           f"{rate!r} Hz; drop --sample-rate / sample_rate or bundle a model trained at that rate")
    data["sample_rate"] = rate
    data["har"] = merge_app_section(user, derived, "har", str(meta_path))
    return []


def fill_imageclass_section(data: dict[str, Any], models: Sequence[Path]) -> list[str]:
    """The "imageclass" section's labels / input (/ normalize) from the CNN's metadata (model.json of `train
    --model cnn` beside the model file); the user's other keys (threshold, interval_s, frame_size, ...) stay."""
    from tinysense.device_config import imageclass_section_from_model

    user = dict(data.get("imageclass") or {})
    found = model_metadata(models[0]) if models else None
    if found is None:
        if "labels" in user:
            return []
        return [_no_metadata_warning("the imageclass section has no labels", models, "labels")]
    meta, meta_path = found
    data["imageclass"] = merge_app_section(user, imageclass_section_from_model(meta, str(meta_path)), "imageclass",
                                           str(meta_path))
    return []


def collect_files(
    config: DeviceConfig, models: Sequence[Path], main: Path | None, extras: Sequence[str]
) -> tuple[DeviceConfig, dict[str, bytes]]:
    """The files of the bundle by device path, and the config as written (its `models` list filled in)."""
    files: dict[str, bytes] = {}
    model_paths = []
    for model in models:
        path = device_path(f"/models/{model.name}", "--model")
        _add(files, path, _read(model, "model file", "--model"), f"--model {model}")
        model_paths.append(path)
    config = dataclasses.replace(config, models=tuple(model_paths))
    _add(files, "/config.json", config.to_json(), "config")
    main_py = GENERATED_MAIN_PY.encode() if main is None else _read(main, "main.py", "--main")
    _add(files, "/main.py", main_py, "--main")
    for spec in extras:
        source, sep, dest = spec.rpartition(":")
        if not sep or not dest.startswith("/"):
            source, dest = spec, ""
        source_path = Path(source)
        dest = device_path(dest or f"/{source_path.name}", "--file")
        _add(files, dest, _read(source_path, "file", "--file"), f"--file {spec}")
    # Each model's metadata (the <model>.json train wrote beside it) goes along as /models/<name>.json, so the image
    # says what its model expects (simulate --image reads it); a --file with that destination wins.
    for model, path in zip(models, model_paths, strict=True):
        meta = model.with_suffix(".json")
        meta_path = str(PurePosixPath(path).with_suffix(".json"))
        if meta.is_file() and meta != model and meta_path not in files:
            _add(files, meta_path, _read(meta, "model metadata", "--model"), f"metadata of --model {model}")
    return config, files


def write_image(files: dict[str, bytes], geometry: Geometry, output: Path) -> bytes:
    """Build the image, prove it mounts with the device's parameters and reads back, then write it atomically."""
    with tqdm(total=2 * len(files), desc="bundle", unit="file", disable=None) as bar:
        image = build_image(files, geometry, progress=lambda _path: bar.update(1))
        verify_image(image, geometry, files)
        bar.update(len(files))
    try:
        write_bytes_atomic(output, image)
    except OSError as error:
        raise CommandError(f"cannot write {output} ({error.strerror}); choose another --output") from None
    return image
