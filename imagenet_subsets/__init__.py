"""Loaders for the published ImageNet 1%/10% subset file lists (lists are not shipped)."""
