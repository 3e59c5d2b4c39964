"""Process layout under ``accelerate launch``: rank, world size, barriers, shards."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar


T = TypeVar("T")


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Contiguous, balanced slice ``rank`` of ``world_size``; ranks past the end get an empty list.

    Unlike the original (``N // world_size`` chunks, crash when N < world_size, E7) every item lands on exactly one
    rank for any N."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"bad rank {rank} for world size {world_size}")
    n = len(items)
    start, end = rank * n // world_size, (rank + 1) * n // world_size
    return list(items[start:end])


@dataclass
class Dist:
    """Rank information and a barrier; one process without a launcher is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: Any = "cpu"
    _state: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self._state is not None and self.world_size > 1:
            self._state.wait_for_everyone()


def init_dist() -> Dist:
    """Initialise through accelerate from the launcher's environment (nccl on GPUs, gloo on CPU).

    Without a GPU, several processes (``accelerate launch --multi_gpu --num_processes N`` or ``torchrun``) are put in
    a gloo group on the CPU; accelerate alone would treat each of them as a lone rank 0, and they would all write
    the same files.
    """
    import torch
    from accelerate import PartialState

    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    cpu = world > 1 and not torch.cuda.is_available()
    state = PartialState(cpu=True) if cpu else PartialState()
    if state.num_processes != world:
        raise RuntimeError(f"launcher started {world} processes but the process group has {state.num_processes}")
    return Dist(
        rank=state.process_index,
        world_size=state.num_processes,
        local_rank=state.local_process_index,
        device=state.device,
        _state=state,
    )
