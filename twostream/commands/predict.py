"""twostream predict: classify videos (HMDB51 models) or images (the Stanford 40 frame model) with a trained model.

Per file: the top-k classes for one clip (the seed's protocol: the frame at the model's frame position
and the flow of the 9 frames around the middle) and for the whole video (the mean softmax over K clips
spread over it, as `evaluate` scores video level). A file that cannot be classified is reported in one
line and the others go on; the exit status is then 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from twostream.errors import InputError

DEFAULT_MODEL = "hmdb51_twostream"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="video (avi, mp4, mkv, webm, mov, ...: what PyAV decodes), image, or directory "
                             "(searched recursively for videos and images)")
    parser.add_argument("--model", action="append", metavar="FILE",
                        help="a model file (models/*.pt), or a model name of the pipeline resolved in --models: "
                             "stanford40_frames, hmdb51_frames (at params.yaml's frames.position), hmdb51_flow, "
                             "hmdb51_twostream, hmdb51_late_fusion. Given twice (a frame and a flow model): their "
                             f"late fusion. Default: {DEFAULT_MODEL}")
    parser.add_argument("--models", default="models", help="where model names are looked up (default: models)")
    parser.add_argument("--top-k", type=int, default=5, help="classes shown per file (default: 5)")
    parser.add_argument("--clips", type=int, default=None,
                        help="clips per video for the video-level result (default: video_test.clips of --params)")
    parser.add_argument("--params", default="params.yaml",
                        help="params file for --clips' default and hmdb51_frames' position (default: params.yaml)")
    parser.add_argument("--json", action="store_true",
                        help="write one JSON record per file (every class's probability) instead of the top-k")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")


def _params(path: Path, needed_for: str):
    from twostream.params import load_params

    if not path.is_file():
        raise InputError(f"{path}: no params file to read {needed_for} from; pass it on the command line")
    return load_params(path)


def model_files(args: argparse.Namespace) -> list[Path]:
    """The model files --model names (files as given; pipeline names looked up in --models)."""
    from twostream.model_table import BY_NAME, model_path

    files: list[Path] = []
    for name in args.model or [DEFAULT_MODEL]:
        if name not in BY_NAME:
            files.append(Path(name))
            continue
        entry = BY_NAME[name]
        parts = entry.fuses or (entry.name,)
        for part in parts:
            position = None
            if part == "hmdb51_frames":
                position = _params(Path(args.params), f"frames.position (for {name})").frames.position
            files.append(model_path(Path(args.models), part, position))
    return files


def format_prediction(prediction, k: int) -> str:
    def ranked(probabilities) -> str:
        return "  ".join(f"{name} {p:.3f}" for name, p in prediction.top(probabilities, k))

    if prediction.video is None:
        return f"{prediction.path}\n  image:     {ranked(prediction.clip)}"
    return (f"{prediction.path} ({prediction.frames} frames)\n"
            f"  one clip:  {ranked(prediction.clip)}\n"
            f"  {prediction.clips} clips:{' ' * max(1, 4 - len(str(prediction.clips)))}{ranked(prediction.video)}")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from twostream.predict import Predictor, load_member, media_files, predict_files

    if args.top_k < 1:
        raise InputError(f"--top-k must be at least 1, got {args.top_k}")
    clips = args.clips if args.clips is not None else _params(Path(args.params), "video_test.clips (--clips)") \
        .video_test.clips
    predictor = Predictor([load_member(path) for path in model_files(args)], clips, args.device)
    files = list(media_files(args.paths))
    failed = 0
    with tqdm(total=len(files), desc="predict", unit="file", file=sys.stderr, disable=None) as bar:
        for path, prediction, error in predict_files(predictor, files):
            bar.update()
            if error is not None:
                failed += 1
                tqdm.write(f"error: {error}", file=sys.stderr)
                if args.json:
                    tqdm.write(json.dumps({"path": str(path), "error": error}), file=sys.stdout)
                continue
            text = json.dumps({**prediction.record(), "model": predictor.names}) if args.json \
                else format_prediction(prediction, args.top_k)
            tqdm.write(text, file=sys.stdout)
    if not files:
        raise InputError(f"no video or image found in {', '.join(args.paths)}")
    if failed:
        print(f"error: {failed} of {len(files)} file(s) could not be classified (see above)", file=sys.stderr)
        return 1
    return 0
