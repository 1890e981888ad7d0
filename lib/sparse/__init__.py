"""Sparse training (Chapters 3 and 4): thresholding maps, RVSM, the ADMM baseline, sparsity reports."""

from lib.sparse.admm import ADMMPruner, project_channels, project_topk
from lib.sparse.baselines import GroupLassoSGD, SlimmingSGD, prune_channels, prune_zero_input_channels
from lib.sparse.channels import channel_norms, channel_sparsity, max_channel_sparsity, zero_channels
from lib.sparse.prox import prox_group_l0, prox_group_lasso, prox_l0, prox_l1, prox_tl1
from lib.sparse.rgsm import RGSM
from lib.sparse.rvsm import RVSM, SplitSGD, recalibrate_bn, sparsity

__all__ = ["prox_l0", "prox_l1", "prox_tl1", "prox_group_lasso", "prox_group_l0", "RVSM", "SplitSGD",
           "ADMMPruner", "project_topk", "project_channels", "sparsity", "recalibrate_bn"]
__all__ += ["RGSM", "channel_sparsity", "channel_norms", "zero_channels", "max_channel_sparsity",  # Chapter 4
            "GroupLassoSGD", "SlimmingSGD", "prune_channels", "prune_zero_input_channels"]
