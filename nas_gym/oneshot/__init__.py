"""Weight sharing: supernets, their training, and what the one-shot agents share.

The space-specific supernets live beside their spaces (``nas_gym.spaces.layer_chain.supernet``,
``nas_gym.spaces.cell.supernet``); this package holds what they share (``layers``), what they
answer and how a path is scored (``base``), how shared weights train (``training``) and the
ENAS / DARTS plumbing (``agents``). Everything here imports torch.
"""
