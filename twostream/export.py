"""Export a trained model for deployment: TorchScript (torch.jit.trace) or ONNX (run with onnxruntime).

The exported graph is the eager model in eval mode, from normalised float32 inputs to logits:

- spatial:   frames (N, 3, S, S)                      -> logits (N, C)
- temporal:  flow (N, 24, S, S)                        -> logits (N, C)
- twostream: frames (N, 3, S, S), flow (N, 24, S, S)   -> logits (N, C)

The batch dimension N is free; S is the model's image size. Normalisation is NOT in the graph: frames
and flow images are scaled to [0, 1] and normalised with the recorded mean/std (ImageNet's) before, and
the softmax is not applied after. A JSON sidecar next to the file (`<file>.json`) says so and holds the
input and output names and shapes, the classes and the checkpoint's whole `preprocess` record (image
size, frame position, flow method and settings), so a deployment prepares inputs as training did.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from twostream.checkpoint import load_model
from twostream.errors import InputError
from twostream.io import atomic_path, write_json
from twostream.models import FLOW_CHANNELS

FORMATS = ("torchscript", "onnx")
# The formats each model kind exports to. The late fusion is no single network (two models whose
# softmax scores are averaged), so it has none.
SUPPORTED: dict[str, tuple[str, ...]] = {"spatial": FORMATS, "temporal": FORMATS, "twostream": FORMATS,
                                         "late_fusion": ()}
INPUTS = {"spatial": ("frames",), "temporal": ("flow",), "twostream": ("frames", "flow")}
ONNX_OPSET = 17


def sidecar_path(out: Path | str) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".json")


def check_supported(kind: str, fmt: str, what: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt not in SUPPORTED.get(kind, ()):
        hint = (": it is two models whose softmax scores are averaged; export the frame and the flow model "
                "and average their softmax" if kind == "late_fusion" else "")
        raise InputError(f"{what}: a {kind} model cannot be exported to {fmt}{hint}")


def example_inputs(kind: str, image_size: int, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Inputs of the right shapes (normalised-range values) to trace with."""
    generator = torch.Generator().manual_seed(seed)
    shapes = {"frames": (batch, 3, image_size, image_size), "flow": (batch, FLOW_CHANNELS, image_size, image_size)}
    return tuple(torch.randn(shapes[name], generator=generator) for name in INPUTS[kind])


def export_model(model_file: Path | str, fmt: str, out: Path | str) -> dict[str, Any]:
    """Write the model of `model_file` to `out` in `fmt` and its sidecar; returns the sidecar's content."""
    model_file, out = Path(model_file), Path(out)
    model, checkpoint = load_model(model_file)
    kind = checkpoint["spec"]["kind"]
    check_supported(kind, fmt, str(model_file))
    model.eval()
    size = int(checkpoint["image_size"])
    inputs = example_inputs(kind, size)
    names = list(INPUTS[kind])
    if fmt == "torchscript":
        data = _torchscript(model, inputs)
    else:
        data = _onnx(model, inputs, names)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    channels = {"frames": 3, "flow": FLOW_CHANNELS}
    sidecar = {
        "format": fmt,
        "model": {"file": model_file.name, "sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
                  "kind": kind, "dataset": checkpoint["dataset"]},
        "inputs": [{"name": n, "shape": ["N", channels[n], size, size], "dtype": "float32"} for n in names],
        "output": {"name": "logits", "shape": ["N", len(checkpoint["classes"])], "dtype": "float32"},
        "normalization_in_graph": False,
        "softmax_in_graph": False,
        "normalization": (checkpoint.get("preprocess") or {}).get(
            "normalization", {"mean": None, "std": None}),
        "classes": list(checkpoint["classes"]),
        "preprocess": checkpoint.get("preprocess"),
    }
    write_json(sidecar_path(out), sidecar)
    return sidecar


def _torchscript(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the shape checks are constant for a trace
        warnings.simplefilter("ignore", FutureWarning)  # torch >= 2.9 points to torch.export; TorchScript works
        torch.jit.save(torch.jit.trace(model, inputs, check_trace=False), buffer)
    return buffer.getvalue()


def _onnx(model: nn.Module, inputs: tuple[torch.Tensor, ...], names: list[str]) -> bytes:
    """ONNX through torch's TorchScript-based exporter (no onnxscript needed), batch dimension free."""
    import onnx

    options: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    buffer = io.BytesIO()
    axes = {name: {0: "N"} for name in [*names, "logits"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and the trace's shape-check warnings
        torch.onnx.export(model, inputs, buffer, input_names=names, output_names=["logits"], dynamic_axes=axes,
                          opset_version=ONNX_OPSET, do_constant_folding=True, **options)
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def load_exported(path: Path | str, fmt: str):
    """A callable over numpy arrays -> logits, for an exported file (tests and docs)."""
    import numpy as np

    path = Path(path)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch >= 2.9 points to torch.export; TorchScript still loads
            module = torch.jit.load(str(path), map_location="cpu")

        def run_ts(*arrays: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)).numpy()
        return run_ts
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run_onnx(*arrays: np.ndarray) -> np.ndarray:
        return session.run(None, {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in zip(names, arrays)})[0]
    return run_onnx
