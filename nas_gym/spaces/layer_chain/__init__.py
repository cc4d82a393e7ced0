"""The MetaQNN-style layer-chain space, everything about it in one folder: the space (``space``),
the chain value object (``chain``), the network (``model``) and its supernet (``supernet``).

Nothing is imported here, so naming ``nas_gym.spaces.layer_chain.chain`` does not import torch."""
