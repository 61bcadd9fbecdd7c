"""Evaluation: the field's depth metrics and ``focal eval`` (named ``evaluation`` so as not to shadow ``eval``)."""

from focalcli.evaluation.metrics import METRIC_KEYS, depth_metrics, mean_metrics

__all__ = ["METRIC_KEYS", "depth_metrics", "mean_metrics"]
