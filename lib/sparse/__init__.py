"""Sparse training (Chapters 3 and 4): thresholding maps, RVSM, the ADMM baseline, sparsity reports."""

from lib.sparse.admm import ADMMPruner, project_channels, project_topk
from lib.sparse.prox import prox_group_l0, prox_group_lasso, prox_l0, prox_l1, prox_tl1
from lib.sparse.rvsm import RVSM, SplitSGD, recalibrate_bn, sparsity

__all__ = ["prox_l0", "prox_l1", "prox_tl1", "prox_group_lasso", "prox_group_l0", "RVSM", "SplitSGD",
           "ADMMPruner", "project_topk", "project_channels", "sparsity", "recalibrate_bn"]
