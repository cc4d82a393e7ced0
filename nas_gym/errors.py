"""The one base of every error nas-gym raises on purpose.

A caller (the CLI, a notebook, a user's script) catches :class:`NasGymError` to tell "nas-gym
refused this input or state, with a message meant for a person" apart from a bug. Each subclass
keeps its older base too (most are ``ValueError``), so code written against those still works.
This module imports nothing, so every layer can depend on it.
"""

from __future__ import annotations


class NasGymError(Exception):
    """Base of every error class nas-gym defines; its message is one line naming the field or file
    at fault and what to do about it."""
