"""`python -m twostream.launch SCRIPT [ARGS...]`: run a stage script on runtime.yaml `torchrun_processes` processes.

- `torchrun_processes` 1: replaces itself with `python SCRIPT ARGS` (the stage exactly as it runs without the
  launcher).
- `torchrun_processes` N > 1: PyTorch's torchrun, in this process: the same as
  `python -m torch.distributed.run --standalone --nproc_per_node N SCRIPT ARGS` (one machine,
  a rendezvous on a free local port). The script runs data-parallel (`twostream.distributed`).
  If processes fail, each has printed its one-line error; the launcher adds one line and exits
  with status 1 (130 after Ctrl-C).
- Already under torchrun (WORLD_SIZE is set, e.g. a multi-node run started with torchrun on every
  node): replaces itself with `python SCRIPT ARGS`; torchrun decided the processes.

`torchrun_processes` comes from the runtime file the script is given (`--runtime PATH`, default runtime.yaml),
which no DVC stage tracks: changing it re-runs nothing.
"""
from __future__ import annotations

import logging
import os
import signal
import sys

from twostream.errors import DeviceUnavailable, TwostreamError, write_line
from twostream.params import load_runtime, usable_cpus

USAGE = "usage: python -m twostream.launch SCRIPT [ARGS...]"


def runtime_file(args: list[str]) -> str:
    """The runtime file a stage script reads: its `--runtime PATH` (or `--runtime=PATH`), else runtime.yaml."""
    path = "runtime.yaml"
    for i, arg in enumerate(args):
        if arg == "--runtime" and i + 1 < len(args):
            path = args[i + 1]
        elif arg.startswith("--runtime="):
            path = arg.split("=", 1)[1]
    return path


def torchrun_args(torchrun_processes: int, script: str, args: list[str]) -> list[str]:
    """torchrun's command line (after `python -m torch.distributed.run`) for one machine."""
    return ["--standalone", f"--nproc_per_node={torchrun_processes}", script, *args]


def check_gpus(device: str, torchrun_processes: int) -> None:
    """On CUDA, one GPU per process: torchrun_processes must not exceed the GPUs of this machine."""
    import torch  # here, not at the top: with torchrun_processes 1 the launcher replaces itself without loading torch

    from twostream.device import resolve_device

    if resolve_device(device).type == "cuda" and torch.cuda.device_count() < torchrun_processes:
        raise DeviceUnavailable(f"runtime.yaml: torchrun_processes is {torchrun_processes} but this machine has {torch.cuda.device_count()} "
                                f"GPU(s) (one per process); lower torchrun_processes or set device: cpu")


def exit_status(statuses: list[int]) -> int:
    """The launcher's exit status from its processes' failed ones: 130 when Ctrl-C ended one, else 1
    (torchrun stops the remaining processes with a signal)."""
    return 130 if 130 in statuses else 1


def _exec_python(script: str, args: list[str]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, script, *args])


def _torchrun(torchrun_processes: int, script: str, args: list[str]) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # torchrun's own log repeats each failure at length: the processes' one-line errors and ours suffice
    for name in list(logging.Logger.manager.loggerDict):  # each has its own level (torchrun's LOGLEVEL)
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    # torchrun would set 1 thread per process; give each its share of the machine's cores instead
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cpus() // torchrun_processes)))
    try:
        run(parse_args(torchrun_args(torchrun_processes, script, args)))
    except ChildFailedError as exc:
        write_line(f"error: {script} failed in {len(exc.failures)} of its {torchrun_processes} processes (their messages are above)")
        return exit_status([failure.exitcode for failure in exc.failures.values()])
    except (KeyboardInterrupt, SignalException) as exc:
        signum = getattr(exc, "sigval", signal.SIGINT)
        write_line(f"error: interrupted ({signal.Signals(signum).name}); the {torchrun_processes} processes of {script} were "
                   f"stopped and no partial output is left: run the stage again")
        return 128 + signum
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    script, args = argv[0], argv[1:]
    if "WORLD_SIZE" in os.environ:  # started by torchrun already
        _exec_python(script, args)
    try:
        runtime = load_runtime(runtime_file(args))
        torchrun_processes = runtime.torchrun_processes
        if torchrun_processes > 1:
            check_gpus(runtime.device, torchrun_processes)
    except TwostreamError as exc:
        write_line(f"error: {exc}")
        return 1
    if torchrun_processes == 1:
        _exec_python(script, args)
    return _torchrun(torchrun_processes, script, args)


if __name__ == "__main__":
    sys.exit(main())
