"""Multiply-accumulates of a cell network, from the cell alone (no torch): convolutions and the
linear head, as the layer chain counts them (``nas_gym.spaces.layer_chain.chain.count_flops``)."""

from __future__ import annotations

import math

from nas_gym.spaces.cell.arch import CELL_OPS, Cell


def cell_network_flops(cell: Cell, input_shape: tuple[int, ...], num_classes: int, channels: int, stages: int,
                       cells_per_stage: int) -> int:
    """The cell must be canonical (dead edges ``none``), as the builder builds it."""
    dims = len(input_shape) - 1
    sizes = list(input_shape[1:])
    positions = math.prod(sizes)
    total = input_shape[0] * channels * 3**dims * positions  # stem
    c = channels
    for stage in range(stages):
        if stage:
            sizes = [(s + 1) // 2 for s in sizes]
            positions = math.prod(sizes)
            total += (c * 2 * c * 3**dims + 2 * c * 2 * c * 3**dims + c * 2 * c) * positions
            c *= 2
        per_cell = sum(c * c * (1 if CELL_OPS[op] == "conv1" else 3**dims) * positions
                       for op in cell.ops if CELL_OPS[op] in ("conv1", "conv3"))
        total += cells_per_stage * per_cell
    return int(total + c * num_classes)
