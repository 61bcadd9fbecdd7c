"""The Laplacian-pyramid fusion: coarse levels selected like fine ones, frames brought to one exposure."""

import cv2
import numpy as np

from focalcli.focus.fuse import PyramidFuser, linear_mean
from tests import synthetic


def _linear(x):
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _srgb(x):
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(np.maximum(x, 0.0), 1 / 2.4) - 0.055)


def _fused(frames, measures):
    fuser = PyramidFuser(*frames[0].shape[:2])
    for frame, measure in zip(frames, measures, strict=True):
        fuser.update(frame.astype(np.float32), measure.astype(np.float32))
    return fuser.result()


def test_the_sharpest_frame_wins_at_every_level_the_coarsest_too():
    sharp = synthetic.texture(96, 128, seed=2)
    defocused = _srgb(cv2.GaussianBlur(_linear(sharp), (0, 0), 6.0))  # the same exposure (blur in linear light)
    ones = np.ones((96, 128))
    out = _fused([sharp, defocused], [ones, 0 * ones])
    assert np.abs(out - sharp).max() < 1e-3  # averaging the coarsest level gave 0.06 (the defocused colour spread)


def test_frames_are_fused_at_the_stacks_average_exposure():
    sharp = synthetic.texture(96, 128, seed=2)
    frames = [_srgb(_linear(sharp) * g) for g in (0.8, 1.25)]  # exposure drift between two frames
    left = np.zeros((96, 128))
    left[:, :64] = 1.0
    out = _fused(frames, [left, 1 - left])  # the left half from the darker frame, the right from the brighter
    truth = _srgb(_linear(sharp) * (0.8 + 1.25) / 2)
    assert np.abs(out - truth)[:, 8:-8].mean() < 0.002  # without exposure matching 0.0066
    ratio = [_linear(out[:, s]).mean() / _linear(truth[:, s]).mean() for s in (np.s_[:60], np.s_[68:])]
    assert abs(ratio[0] - ratio[1]) < 0.01, ratio  # one exposure on both sides (no step at the seam)


def test_linear_mean_is_the_exposure_defocus_keeps():
    sharp = synthetic.texture(96, 128, seed=2)
    defocused = _srgb(cv2.GaussianBlur(_linear(sharp), (0, 0), 6.0)).astype(np.float32)
    assert abs(linear_mean(defocused) / linear_mean(sharp) - 1) < 0.005
    assert abs(defocused.mean() / sharp.mean() - 1) > 2 * abs(linear_mean(defocused) / linear_mean(sharp) - 1)


def test_frames_equally_sharp_within_the_noise_are_averaged_a_sharper_one_wins():
    rng = np.random.default_rng(0)
    sharp = synthetic.texture(96, 128, seed=2)
    sigma = 0.02
    noisy = [np.clip(sharp + sigma * rng.standard_normal(sharp.shape), 0, 1) for _ in range(4)]
    ones = np.ones((96, 128))
    fuser = PyramidFuser(96, 128, noise_energy=1.0)  # measures within a few units of each other: one sharpness
    for frame in noisy:
        fuser.update(frame.astype(np.float32), ones.astype(np.float32))
    residual = fuser.result() - sharp
    assert residual.std() < 0.6 * sigma  # four frames averaged: half the noise (hard selection keeps all of it)
    fuser = PyramidFuser(96, 128, noise_energy=1.0)
    blurred = _srgb(cv2.GaussianBlur(_linear(sharp), (0, 0), 3.0)).astype(np.float32)  # one exposure
    fuser.update(blurred, ones.astype(np.float32))
    fuser.update(sharp, 100 * ones.astype(np.float32))  # far sharper than the noise could make it
    assert np.abs(fuser.result() - sharp).max() < 1e-3
