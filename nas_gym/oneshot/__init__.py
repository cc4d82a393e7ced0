"""Weight sharing: how a supernet's shared weights train (``training``), what that costs in
device memory (``memory``) and the ENAS / DARTS plumbing (``agents``). Everything here imports
torch.

The supernets themselves are part of their spaces (``nas_gym.spaces.layer_chain.supernet``,
``nas_gym.spaces.cell.supernet``), built on what every supernet shares
(``nas_gym.spaces.supernet``: its layers and the protocol it answers). That part sits in the
spaces layer, below training; this package trains them, so it sits above it.
"""
