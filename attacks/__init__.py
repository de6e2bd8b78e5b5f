"""Adversaries of Sun et al. (2019) and against the secure pipeline."""
