"""Pretrained torchvision weights, cached in TORCH_HOME, with a clear error when offline.

torchvision downloads weights on first use; on a machine without internet that is a
bare URLError traceback. Here a missing file is a message that names the file, the
URL and where to put it. There is never a silent fallback to random weights.

Stand-ins. `write_standins` writes random weights with the real keys and shapes under
torchvision's exact file names, so the real loading path (TORCH_HOME cache, torch.hub,
strict `load_state_dict`) runs offline: the full-setting dry run in the tests and the
real-size timing run (`make realsize`) use them. torch.hub verifies the hash in a file's name
only when it downloads the file, so a cached stand-in loads like a real file: each one has a
marker file next to it (`<file>.standin`), and loading a marked file logs a loud WARNING.
Stand-ins are never written over a real file, and the stages never write any.

A cached file is data, never code: it is read with `weights_only=True` (tensors and plain
containers only), so a weights file that carries a pickled program is refused before any of it
runs, whether it was downloaded, copied in by hand or is a stand-in.
"""
from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torchvision.models import WeightsEnum

from twostream.errors import WeightsUnavailable

log = logging.getLogger(__name__)

STANDIN_SUFFIX = ".standin"  # marker next to a stand-in weights file


def weights_path(weights: WeightsEnum) -> Path:
    """Where torch.hub keeps (or will keep) the file of `weights`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def standin_marker(path: Path) -> Path:
    """The marker file that says the weights file `path` is a random stand-in."""
    return path.with_name(path.name + STANDIN_SUFFIX)


def is_standin(path: Path) -> bool:
    return standin_marker(Path(path)).exists()


def refusal(exc: BaseException) -> str | None:
    """The short reason when `torch.load(weights_only=True)` refused a file's contents (None: another failure)."""
    text = str(exc)
    if not isinstance(exc, pickle.UnpicklingError) or "weights only load failed" not in text.lower():
        return None
    match = re.search(r"WeightsUnpickler error: ([^\n]*?)(?: was not an allowed global| Please|\n|$)", text)
    return " ".join(match.group(1).split()).rstrip(".") if match else "objects other than tensors and plain data"


def load_pretrained(weights: WeightsEnum) -> dict[str, Any]:
    """State dict of `weights` from the TORCH_HOME cache, downloading it if possible."""
    path = weights_path(weights)
    if not path.is_file():
        log.info("downloading %s to %s", weights, path)
    try:
        state = weights.get_state_dict(progress=True, check_hash=True, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a refused pickle is an UnpicklingError
        reason = refusal(exc)
        if reason:
            raise WeightsUnavailable(
                f"{path}: refused: the weights file of {weights} holds more than tensors and plain data "
                f"({reason}), which could run code if loaded; nothing of it was run: delete it and let "
                f"torchvision download the real file ({weights.url})") from None
        if not isinstance(exc, (OSError, RuntimeError)):  # URLError is an OSError; hash mismatch a RuntimeError
            raise
        raise WeightsUnavailable(
            f"pretrained weights {weights} are not available: {path} "
            f"{'exists but could not be loaded' if path.is_file() else 'is missing'} "
            f"and downloading {weights.url} failed ({exc}). On a machine with internet run "
            f"`python -c \"import torchvision; torchvision.models.get_weight('{weights}').get_state_dict()\"` "
            f"or download the URL yourself, then copy the file to {path} "
            f"(the directory follows TORCH_HOME). The offline demo needs no weights: "
            f"model.pretrained: none and flow.method: dis in params.yaml."
        ) from exc
    if is_standin(path):
        log.warning("STAND-IN WEIGHTS: %s is a random stand-in for %s (marked by %s), not the trained "
                    "weights: every result of this run is meaningless; it is good for dry runs and timing "
                    "only. For real results delete both files (or use another TORCH_HOME) and let "
                    "torchvision download the real ones.", path, weights, standin_marker(path).name)
    return state


def standin_builders() -> dict[WeightsEnum, Callable[[], torch.nn.Module]]:
    """The weights the full setting loads, each with a builder of its network at random init whose
    state dict has exactly the keys and shapes of the published file (GoogLeNet's has the aux heads)."""
    from torchvision.models import GoogLeNet_Weights, ResNet18_Weights, googlenet, resnet18
    from torchvision.models.optical_flow import Raft_Large_Weights, raft_large

    return {
        GoogLeNet_Weights.IMAGENET1K_V1: lambda: googlenet(weights=None, aux_logits=True, init_weights=True),
        ResNet18_Weights.IMAGENET1K_V1: lambda: resnet18(weights=None),
        Raft_Large_Weights.DEFAULT: lambda: raft_large(weights=None),
    }


def write_standins(torch_home: str | Path, seed: int = 0, only: Iterable[WeightsEnum] | None = None) -> list[Path]:
    """Write random stand-ins of the full setting's weights (or of `only` these) into
    `torch_home`/hub/checkpoints under torchvision's file names, each with its `.standin` marker; a
    real (unmarked) file already there is kept. Returns the stand-in files. Deterministic: the same
    seed gives the same weights."""
    from twostream.io import atomic_path

    checkpoints = Path(torch_home) / "hub" / "checkpoints"
    written = []
    builders = standin_builders()
    for weights in builders if only is None else only:
        build = builders[weights]
        path = checkpoints / os.path.basename(weights.url)
        if path.is_file() and not is_standin(path):
            log.info("%s: real weights file kept", path)
            continue
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            state = build().state_dict()
        checkpoints.mkdir(parents=True, exist_ok=True)
        # the marker first: a file without its marker must never be a stand-in
        standin_marker(path).write_text(
            f"{path.name} here is a random stand-in for {weights} written by twostream.weights.write_standins "
            f"(offline dry runs and timing only). Delete both files to use the real weights.\n")
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            torch.save(state, fh)
        written.append(path)
    return written


def prepare_torch_home(local: str | Path, cache: str | Path | None = None) -> Path:
    """A TORCH_HOME for an offline timing run: in `local`, the real weights of the full setting where
    they are cached in `cache` (the usual TORCH_HOME; default: torch.hub's) as links, random stand-ins
    (marked, logged loudly) for the others. Returns `local`."""
    local = Path(local).resolve()
    cache_checkpoints = Path(cache) / "hub" / "checkpoints" if cache else Path(torch.hub.get_dir()) / "checkpoints"
    checkpoints = local / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    for weights in standin_builders():
        name = os.path.basename(weights.url)
        real, here = cache_checkpoints / name, checkpoints / name
        if real.is_file() and not is_standin(real) and real.resolve() != here.resolve():
            standin_marker(here).unlink(missing_ok=True)
            here.unlink(missing_ok=True)
            here.symlink_to(real)
            log.info("%s: the real weights (%s)", weights, real)
    standins = write_standins(local)
    for path in standins:
        log.warning("STAND-IN WEIGHTS: %s is not in %s: using a random stand-in (%s); the timing is "
                    "real, the results are meaningless", path.name, cache_checkpoints, path)
    return local


def main(argv: list[str] | None = None) -> None:
    """`python -m twostream.weights DIR`: prepare DIR as the TORCH_HOME of an offline timing run
    (`prepare_torch_home`) and print it."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("dir", help="directory to use as TORCH_HOME (created if needed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(prepare_torch_home(args.dir))


if __name__ == "__main__":
    main()
