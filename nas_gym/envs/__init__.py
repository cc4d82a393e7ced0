"""The env: one class over any search space. It imports no RL library; the SB3 vector env over
it lives with the SB3 agents (``nas_gym.agents.sb3_vec``)."""
