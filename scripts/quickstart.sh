#!/usr/bin/env bash
# The README's first command: set up .venv (first run only), then run a short MetaQNN-style
# Q-learning search on the embedded MNIST-1D default with a progress bar and TensorBoard logs.
# Extra arguments go to `nas-gym search` (e.g. --episodes 50 --agent random).
source "$(dirname "$0")/_env.sh"
nas-gym search --agent qlearning --config mnist1d --episodes "${EPISODES:-120}" --seed 0 --logdir runs "$@"
echo
echo "View the curves:  $VENV/bin/tensorboard --logdir runs   (then open http://localhost:6006)"
