"""`tinysense simulate`: run the device's app code on recordings in the host firmware; print what it would publish."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

from tinysense import simulation
from tinysense.atomic import write_bytes_atomic
from tinysense.errors import CommandError

NAME = "simulate"
HELP = ("run the device's app on .npy (IMU, har), .wav (audio, soundlevel) recordings or camera images "
        "(imageclass) in the host firmware; print the MQTT messages it would publish")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recordings", nargs="+", type=Path,
                        help=".npy IMU recordings, .wav audio files, or camera frames (.pgm/.ppm/.png files or "
                             "folders of them, in order)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path,
                        help="folder `tinysense train` wrote (or its model.trees / model.tscn)")
    source.add_argument("--image", type=Path,
                        help="a filesystem image from `tinysense bundle`: its /config.json and model are used")
    parser.add_argument("--config", type=Path,
                        help="the device's config.json (app settings, mqtt topic_prefix and limits); without it "
                             "one is made from the model metadata or the audio options")
    parser.add_argument("--board", choices=simulation.boards(),
                        help=f"board whose pins the app uses (default {simulation.DEFAULT_BOARD}; for images "
                             f"{simulation.CAMERA_BOARD}, which has a camera)")
    parser.add_argument("--alloc-checks", type=int, default=simulation.DEFAULT_ALLOC_CHECKS, metavar="N",
                        help="loop passes per recording whose heap use is measured with gc.mem_alloc(), spread over "
                             f"the recording (default {simulation.DEFAULT_ALLOC_CHECKS}; 0: every pass, slower)")
    parser.add_argument("--output", "-o", type=Path, help="also write the per-message results as CSV")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    audio = parser.add_argument_group("audio (.wav); given options override the config's soundlevel keys")
    audio.add_argument("--chunk-ms", type=float, help="interval per message in ms (default 125 without a config)")
    audio.add_argument("--weighting", choices=("A", "C", "Z"))
    audio.add_argument("--mic-sensitivity-dbfs", type=float,
                       help="the microphone's output for 94 dB SPL, in dBFS (default -26)")


def _config(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.alloc_checks < 0:
        raise CommandError(f"--alloc-checks {args.alloc_checks} is negative; give a count, or 0 to check every pass")
    if args.config and args.image:
        raise CommandError("--config and --image both give the device config; pass one of them")
    if args.config:
        return simulation.load_config(args.config)
    return None


def _simulate_images(args: argparse.Namespace, images: list[Path], config: dict[str, Any] | None,
                     files: dict[str, bytes] | None) -> tuple[simulation.SimRun, str]:
    if not (args.model or args.image):
        raise CommandError("images need a model; pass --model FOLDER (from train --model cnn) or --image FS.bin")
    model = (simulation.cnn_model_from_image(args.image, files or {}) if args.image
             else simulation.cnn_model_from_folder(args.model))
    run_ = simulation.simulate_images(model, images, config=config, board=args.board or simulation.CAMERA_BOARD,
                                      alloc_checks=args.alloc_checks)
    summary = (f"{len(run_.results)} messages from {len(images)} camera frames through the imageclass app with "
               f"{model.source}")
    return run_, summary


def run(args: argparse.Namespace) -> int:
    images = simulation.image_files(args.recordings)
    kinds = {p.suffix.lower() for p in args.recordings}
    if images is None and (not kinds <= {".npy", ".wav"} or len(kinds) != 1):
        raise CommandError(f"recordings must be all .npy (IMU), all .wav (audio) or images (.pgm/.ppm/.png files or "
                           f"folders of them), got {sorted(kinds)}; pass one kind at a time")
    for path in args.recordings:
        if images is None and not path.is_file():
            raise CommandError(f"recording {path} does not exist; pass existing files")
    config = _config(args)
    files = simulation.read_image(args.image) if args.image else None
    if files is not None:
        config = simulation.image_config(args.image, files)
    if images is not None:
        run_, summary = _simulate_images(args, images, config, files)
    elif kinds == {".wav"}:
        run_ = simulation.simulate_audio(
            args.recordings, config=config, board=args.board or simulation.DEFAULT_BOARD,
            interval_s=None if args.chunk_ms is None else args.chunk_ms / 1000, weighting=args.weighting,
            mic_sensitivity_dbfs=args.mic_sensitivity_dbfs, alloc_checks=args.alloc_checks)
        summary = f"{len(run_.results)} intervals from {len(args.recordings)} recordings through the soundlevel app"
    else:
        if not (args.model or args.image):
            raise CommandError("IMU recordings need a model; pass --model FOLDER (from train) or --image FS.bin")
        model = (simulation.model_from_image(args.image, files) if args.image
                 else simulation.model_from_folder(args.model))
        run_ = simulation.simulate_imu(model, args.recordings, config=config,
                                       board=args.board or simulation.DEFAULT_BOARD,
                                       alloc_checks=args.alloc_checks)
        named = [(r, simulation.label_from_name(r.recording, model.classes)) for r in run_.results]
        known = [(r, label) for r, label in named if label is not None]
        agree = sum(r.value == label for r, label in known)
        accuracy = (f"; agreement with the labels in the file names: {agree}/{len(known)} windows "
                    f"({agree / len(known):.3f})" if known else "")
        how = "the har app" if run_.device else "the C features and trees"
        summary = (f"{len(run_.results)} windows from {len(args.recordings)} recordings through {how} with "
                   f"{model.source}{accuracy}")
    for note in run_.notes:
        print(f"tinysense simulate: warning: {note}")
    if not args.quiet:
        if run_.device:
            for p in run_.published:
                print(f"{p.recording}\t{p.topic}\t{p.payload}")
        else:
            for r in run_.results:
                print(f"{r.recording}\t{r.index}\t{r.start_s:.2f}s\t{r.value}")
    if args.output:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["recording", "window", "start_s", "result", "topic", "payload"])
        writer.writerows([r.recording, r.index, f"{r.start_s:.3f}", r.value, r.topic, r.payload]
                         for r in run_.results)
        try:
            write_bytes_atomic(args.output, out.getvalue().encode())
        except OSError as error:
            raise CommandError(f"cannot write {args.output} ({error.strerror}); choose another --output") from None
    if run_.device:
        print(f"simulate: steady state: {run_.steady_checked} of {run_.steady_passes} loop passes without a message "
              f"(sensor read → process) checked: {run_.steady_bytes} bytes allocated on the heap (gc.mem_alloc); "
              f"{run_.overruns} sensor overruns, {run_.dropped} messages dropped from the outbox")
    print(f"simulate: {summary}")
    return 0
