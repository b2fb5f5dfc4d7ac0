"""Data-parallel processes: torchrun's environment, the process group, and the few collectives
the stages need.

A stage started by torchrun (`python -m twostream.launch`, runtime.yaml `torchrun_processes` > 1, or torchrun
itself on several nodes) runs once per process; torchrun sets RANK, LOCAL_RANK, WORLD_SIZE and
the rendezvous address. `process_group` joins the group (NCCL on CUDA, one GPU per process,
picked by LOCAL_RANK; gloo on the CPU) and leaves it at the end. Outside torchrun, or with a
world of one process, every function here is a no-op and the stage runs exactly as it always did.

What the ranks share:
- training (`twostream.train`): DistributedDataParallel averages the gradients; each process loads
  its share of every global batch; train figures are summed over the processes and validation
  logits gathered in dataset order, so every rank computes the same figures and takes the same
  best-epoch decision; rank 0 alone writes the checkpoint and the curves.
- arrays (`shared_dir`, `shared_array`): rank 0 creates the output (atomically, as `twostream.io`),
  every rank fills its own rows (`shard_range`), rank 0 renames it into place once all are done.
  The ranks must see the same filesystem (one machine, or a shared filesystem across nodes).
"""
from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from twostream.device import resolve_device
from twostream.errors import DeviceUnavailable
from twostream.io import atomic_dir, atomic_path, open_array, reserve

log = logging.getLogger(__name__)


def launched_world_size() -> int:
    """The number of processes torchrun started for this run (WORLD_SIZE), 1 outside torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Processes in the current process group; 1 when there is none."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's rank in the current process group; 0 when there is none."""
    return dist.get_rank() if is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes the outputs (rank 0, or the only process)."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def process_device(device: str, key: str = "device") -> torch.device:
    """runtime.yaml `device` for this process: CUDA device LOCAL_RANK under torchrun."""
    resolved = resolve_device(device, key)
    if resolved.type != "cuda" or launched_world_size() == 1:
        return resolved
    index, count = local_rank(), torch.cuda.device_count()
    if index >= count:
        raise DeviceUnavailable(f"{key}: process LOCAL_RANK {index} has no GPU (this machine has {count}); "
                                f"set torchrun_processes in runtime.yaml (or torchrun's --nproc_per_node) to at most {count}")
    return torch.device("cuda", index)


@contextlib.contextmanager
def process_group(device: str) -> Iterator[torch.device]:
    """Join torchrun's process group for the duration (nothing outside torchrun or with one process);
    yields this process's device. NCCL with one GPU per process (LOCAL_RANK) on CUDA, gloo on CPU."""
    resolved = process_device(device)
    if launched_world_size() == 1 or is_initialized():
        yield resolved
        return
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
        dist.init_process_group("nccl", device_id=resolved)
    else:
        dist.init_process_group("gloo")
    log.info("process group: rank %d of %d, backend %s, device %s", rank(), world_size(), dist.get_backend(),
             resolved)
    try:
        yield resolved
    finally:
        dist.destroy_process_group()


def _comm_device() -> torch.device:
    """Where collective tensors must live: the current GPU for NCCL, the CPU for gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait until every process gets here (nothing with one process)."""
    if world_size() > 1:
        dist.barrier()


def seed_process(seed: int) -> None:
    """Under several processes, give each its own RNG stream (dropout, anything not seeded per
    sample) derived from (seed, rank); with one process, nothing changes (the stage's own seeding)."""
    if world_size() == 1:
        return
    value = int(np.random.SeedSequence([seed, rank()]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def sum_over_processes(values: Sequence[float]) -> list[float]:
    """Each value summed over the processes (float64); the values themselves with one process."""
    if world_size() == 1:
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def from_main(values: Sequence[float]) -> list[float]:
    """Rank 0's values on every process (float64): one decision everywhere, even where float
    arithmetic differs between machines."""
    if world_size() == 1:
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device())
    dist.broadcast(tensor, src=0)
    return tensor.cpu().tolist()


def broadcast_object(obj: object) -> object:
    """Rank 0's (picklable) object on every process."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def in_dataset_order(shards: Sequence[torch.Tensor], n: int) -> torch.Tensor:
    """Undo DistributedSampler(shuffle=False): process r held samples r, r + W, r + 2W, ... of the
    dataset padded to a multiple of W with its first samples; back to the N samples in order."""
    stacked = torch.stack(list(shards), dim=1)  # (per process, W, ...): row k holds kW .. kW + W - 1
    return stacked.reshape(-1, *stacked.shape[2:])[:n]


def gather_in_order(local: np.ndarray, n: int) -> np.ndarray:
    """Every process's rows of a DistributedSampler(shuffle=False) shard, gathered on every process in
    dataset order without the sampler's padding; `local` itself with one process."""
    if world_size() == 1:
        return local
    tensor = torch.from_numpy(np.ascontiguousarray(local)).to(_comm_device())
    shards = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(shards, tensor)
    return in_dataset_order([s.cpu() for s in shards], n).numpy()


def data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` wrapped in DistributedDataParallel under several processes (on CUDA with its
    BatchNorm layers converted to SyncBatchNorm: statistics over the global batch), else `model`.

    SyncBatchNorm needs GPU modules; on the CPU (gloo) each process normalises with the statistics
    of its own share of the batch, and rank 0's running statistics are the ones kept (DDP
    broadcasts them before every forward pass, `sync_buffers` before validation)."""
    if world_size() == 1:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model).to(device)  # in place below the top module
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def sync_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every process, so every process holds
    exactly the model rank 0 saves."""
    if world_size() == 1:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)


def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows [start, stop) of the `rank`-th of `world` contiguous shards of n rows (sizes differ by
    at most one, the larger first)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def my_rows(n: int) -> slice:
    """This process's contiguous share of n rows (all of them with one process)."""
    return slice(*shard_range(n, rank(), world_size()))


@contextlib.contextmanager
def shared_dir(path: str | Path) -> Iterator[Path]:
    """`twostream.io.atomic_dir` for every process: rank 0 creates the temporary directory, every
    process gets its path; once all are done, rank 0 renames it onto `path`."""
    if world_size() == 1:
        with atomic_dir(path) as tmp:
            yield tmp
        return
    with atomic_dir(path) if is_main() else contextlib.nullcontext() as tmp:
        tmp = Path(broadcast_object(str(tmp) if is_main() else None))
        yield tmp
        barrier()


@contextlib.contextmanager
def shared_array(path: str | Path, shape: tuple[int, ...], dtype: type = np.uint8) -> Iterator[np.ndarray]:
    """`twostream.io.open_array` for every process: rank 0 creates the .npy memmap (atomically), every
    process opens the same file and fills its rows (`my_rows`); once all are done, rank 0 renames it
    onto `path`. Processes must see the same filesystem."""
    if world_size() == 1:
        with open_array(path, shape, dtype) as array:
            yield array
        return
    with atomic_path(path) if is_main() else contextlib.nullcontext() as tmp:
        if is_main():
            np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape).flush()
            reserve(tmp)  # its blocks now: a sparse file on a full disk would end a process with SIGBUS
        tmp = Path(broadcast_object(str(tmp) if is_main() else None))
        array = np.lib.format.open_memmap(tmp, mode="r+")
        try:
            yield array
            array.flush()
        finally:
            del array
        barrier()
