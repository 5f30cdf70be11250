"""Addresses, the block graph, type checking and fingerprints."""
