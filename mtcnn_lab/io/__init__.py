"""Inputs and outputs: reading images and videos, selecting frames, validating inputs, and the result
entries with their JSON Lines files."""
