"""A complete user agent in 30 lines: local search (White et al.: mutate the best so far).

Run it with:  nas-gym search --agent examples/local_search.py:LocalSearch --config mnist1d-tiny
"""

import numpy as np

from nas_gym.agents.base import play
from nas_gym.agents.context import AgentContext


class LocalSearch:
    def __init__(self, env, seed=0, hparams=None, logdir=None):
        self.env = env
        self.rng = np.random.default_rng(seed)
        self.patience = (hparams or {}).get("patience", 10)  # restart after this many misses

    def learn(self, episodes):
        space = AgentContext.of(self.env).space  # what an agent may use besides env.step
        best, best_reward, misses = None, -np.inf, 0
        for _ in range(episodes):
            if best is None or misses >= self.patience:
                candidate, misses, best_reward = space.sample(self.rng), 0, -np.inf
            else:
                candidate = space.mutate(best, self.rng)
            reward, _info = play(self.env, candidate)  # plays the actions, then stop
            if reward > best_reward:
                best, best_reward, misses = candidate, reward, 0
            else:
                misses += 1
