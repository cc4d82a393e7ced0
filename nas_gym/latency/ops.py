"""The two modules a cell's latency needs beyond the layers its builder makes: a node's sum and
an empty cell's zeros. They live with the cell's network (``nas_gym.spaces.cell.model``), which
the cell's latency layers cut modules from; this name stays for callers that import it here."""

from nas_gym.spaces.cell.model import Add, Zeros

__all__ = ["Add", "Zeros"]
