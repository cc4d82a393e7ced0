"""The NAS-Bench-201-style cell space, everything about it in one folder: the space (``space``),
the cell value object and its canonical key (``arch``), what a cell computes (``function``,
``graph``), its cost (``flops``), the network (``model``) and its supernet (``supernet``).

Nothing is imported here, so naming ``nas_gym.spaces.cell.arch`` does not import torch."""
