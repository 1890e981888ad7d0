"""Pieces shared by the chapters' experiment modules."""

from __future__ import annotations

from lib.data import ImageSet, load


def train_test(s: dict) -> tuple[ImageSet, ImageSet]:
    """(train, test) for settings ``s``: ``dataset``, ``n_per_class``, ``n_test_per_class``, ``image_size``.

    Class-balanced subsets (seeds 0 and 1) of the data set, average-pooled to ``image_size``.
    """
    train = load(s["dataset"], "train").subset(s["n_per_class"], seed=0)
    test = load(s["dataset"], "test").subset(s["n_test_per_class"], seed=1)
    return train.pooled(s["image_size"]), test.pooled(s["image_size"])
