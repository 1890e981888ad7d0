"""Sparse training (Chapters 3 and 4): thresholding maps, RVSM, the ADMM baseline, sparsity reports."""

from lib.sparse.prox import prox_group_l0, prox_group_lasso, prox_l0, prox_l1, prox_tl1

__all__ = ["prox_l0", "prox_l1", "prox_tl1", "prox_group_lasso", "prox_group_l0"]
