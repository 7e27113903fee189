"""Ratchet's pipeline package: one module per DVC stage, plus the contract and params they share."""
