"""Shared entry point of the stage scripts: logging, params, and clean errors.

Expected failures (a bad param, a missing or corrupt input file, no network for a
download, weights not cached) end the stage with one clear line naming the file or
key, exit status 1 and no traceback; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from twostream.params import Params, ParamsError, load_params

log = logging.getLogger("twostream")


def expected_errors() -> tuple[type[BaseException], ...]:
    from twostream.data.images import ImageError
    from twostream.data.splits import SplitListError
    from twostream.data.video import VideoError
    from twostream.device import DeviceUnavailable
    from twostream.io import InputError
    from twostream.train import TrainingError
    from twostream.weights import WeightsUnavailable

    errors: list[type[BaseException]] = [ParamsError, SplitListError, ImageError, VideoError,
                                         WeightsUnavailable, DeviceUnavailable, InputError, TrainingError,
                                         FileNotFoundError]
    try:
        from twostream.data.sources import SourceError
        errors.append(SourceError)
    except ImportError:  # the real-data module imports optional archive readers
        pass
    return tuple(errors)


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


def run_stage(main: Callable[[argparse.Namespace, Params], None], parser: argparse.ArgumentParser) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser.parse_args()
    try:
        params = load_params(args.params)
        main(args, params)
    except expected_errors() as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
