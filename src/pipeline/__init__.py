"""Ratchet's pipeline package: one module per DVC stage, plus the contract and params they share."""

import os

# The environment this process started with, before any import set variables in it (scikit-learn sets
# KMP_* ones): `make run`'s preload server compares it with its own (pipeline.preload).
ENVIRONMENT_AT_START = dict(os.environ)
