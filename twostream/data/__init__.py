"""Datasets: synthetic generation, real sources, splits, images, video."""
