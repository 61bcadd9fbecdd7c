"""Registration: known transforms recovered per motion model, photometric fit, failures, reference choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from focalcli.align import AlignConfig, register_stack
from focalcli.align.register import resolve_reference
from focalcli.errors import InputError
from focalcli.io.stack import FocalStack
from tests.synthetic_align import corner_error, misaligned_stack


def _stack(frames: np.ndarray) -> FocalStack:
    return FocalStack(frames=torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous())  # (N, 3, H, W)


def test_similarity_recovered_to_a_fifth_of_a_pixel():
    frames, truths, ref = misaligned_stack(n=5, h=240, w=320, model="similarity")
    reg = register_stack(_stack(frames))
    assert reg.reference == ref and not reg.bad
    pairs = enumerate(zip(reg.frames, truths, strict=True))
    errors = [corner_error(f.matrix, t, 240, 320) for i, (f, t) in pairs if i != ref]
    assert np.mean(errors) < 0.2
    # breathing: 3 % across the stack, frame k shows the scene 1 + 0.03 k / 4 times larger
    scales = [f.scale for f in reg.frames]
    assert scales == sorted(scales)
    assert scales[-1] / scales[0] == pytest.approx(1.03, abs=0.003)


@pytest.mark.parametrize("model", ["translation", "similarity", "affine", "homography"])
def test_each_motion_model_recovers_its_own_motion(model):
    frames, truths, ref = misaligned_stack(n=4, h=120, w=160, model=model, seed=1)
    reg = register_stack(_stack(frames), AlignConfig(model=model))
    errors = [corner_error(f.matrix, t, 120, 160) for f, t in zip(reg.frames, truths, strict=True)]
    assert max(errors) < 0.3, errors
    if model == "translation":
        for f in reg.frames:
            np.testing.assert_allclose(f.matrix[:2, :2], np.eye(2), atol=1e-9)
    if model in ("translation", "similarity", "affine"):
        assert all(np.allclose(f.matrix[2], [0, 0, 1]) for f in reg.frames)


def test_translation_cannot_explain_breathing():
    frames, truths, ref = misaligned_stack(n=5, h=120, w=160, model="similarity", seed=2)
    reg = register_stack(_stack(frames), AlignConfig(model="translation"))
    assert max(corner_error(f.matrix, t, 120, 160) for f, t in zip(reg.frames, truths, strict=True)) > 0.5


def test_downscaled_estimation_maps_back_to_full_size():
    frames, truths, ref = misaligned_stack(n=3, h=480, w=640, seed=3)
    reg = register_stack(_stack(frames), AlignConfig(max_size=320, finest_level=0))  # estimated at half size
    # a half-pixel slip in the coordinate conventions would cost ~0.5-1 px here
    assert max(corner_error(f.matrix, t, 480, 640) for f, t in zip(reg.frames, truths, strict=True)) < 0.25


def test_photometric_exposure_gain_to_the_reference():
    gains = np.array([[0.8, 0.9, 1.1], [1.0, 1.0, 1.0], [1.15, 1.05, 0.95]], np.float32)
    frames, _, ref = misaligned_stack(n=3, h=240, w=320, gains=gains, offsets=np.zeros((3, 3)), seed=4)
    reg = register_stack(_stack(frames))
    for k, f in enumerate(reg.frames):
        np.testing.assert_allclose(f.gain, 1 / gains[k], atol=0.03)
        assert (f.offset == 0).all()


def test_exposure_correction_leaves_defocus_contrast_alone():
    """A defocused frame has less contrast, not less light: the default (exposure) gain stays ~1 where the affine fit
    of earlier versions boosted its contrast (and so its focus measure) by ~20 %."""
    from tests.synthetic_align import breathing_stack

    frames, _, _ = breathing_stack(step=0.006)
    exposure = register_stack(_stack(frames))
    affine = register_stack(_stack(frames), AlignConfig(photometric="affine"))
    assert max(abs(float(g) - 1) for f in exposure.frames for g in f.gain) < 0.02
    assert max(abs(float(g) - 1) for f in affine.frames for g in f.gain) > 0.1


def test_photometric_gain_and_offset_to_the_reference():
    gains = np.array([[0.8, 0.9, 1.1], [1.0, 1.0, 1.0], [1.15, 1.05, 0.95]], np.float32)
    offsets = np.array([[0.05, 0.0, -0.03], [0.0, 0.0, 0.0], [-0.04, 0.02, 0.01]], np.float32)
    frames, _, ref = misaligned_stack(n=3, h=240, w=320, gains=gains, offsets=offsets, seed=4)
    reg = register_stack(_stack(frames), AlignConfig(photometric="affine"))
    for k, f in enumerate(reg.frames):
        # reference ~ gain * frame + offset inverts frame = g * scene + o
        np.testing.assert_allclose(f.gain, 1 / gains[k], atol=0.03)
        np.testing.assert_allclose(f.offset, -offsets[k] / gains[k], atol=0.02)


def test_an_unrelated_frame_fails_and_the_chain_goes_around_it():
    frames, truths, ref = misaligned_stack(n=5, h=120, w=160, seed=5)
    frames[3] = misaligned_stack(n=1, h=120, w=160, seed=99)[0][0]  # another scene
    reg = register_stack(_stack(frames))
    assert reg.bad == ["frame_003.png"]
    assert reg.frames[3].failure and reg.frames[3].score < 0.4
    assert corner_error(reg.frames[4].matrix, truths[4], 120, 160) < 0.3  # registered to frame 2 instead


def test_reference_index():
    frames, truths, _ = misaligned_stack(n=3, h=120, w=160, seed=6)
    reg = register_stack(_stack(frames), AlignConfig(reference=0))
    assert reg.reference == 0
    np.testing.assert_allclose(reg.frames[0].matrix, np.eye(3))
    to_first = np.linalg.inv(truths[0])  # truths map to the middle frame; compose to frame 0
    assert corner_error(reg.frames[2].matrix, to_first @ truths[2], 120, 160) < 0.3


def test_reference_and_model_are_checked():
    assert resolve_reference("middle", 7) == 3 and resolve_reference(None, 4) == 1 and resolve_reference(-1, 4) == 3
    with pytest.raises(InputError, match="out of range"):
        resolve_reference(5, 5)
    with pytest.raises(InputError, match="motion model"):
        AlignConfig(model="rigid")


def test_transforms_json_contract():
    frames, _, _ = misaligned_stack(n=3, h=96, w=128, seed=7)
    doc = register_stack(_stack(frames)).to_json()
    assert doc["reference"] == 1
    assert [set(f) >= {"name", "matrix", "scale", "score"} for f in doc["frames"]] == [True] * 3
    assert np.asarray(doc["frames"][0]["matrix"]).shape == (3, 3)


@pytest.mark.shared_data
def test_real_pcb_stack_breathing(shared_data, tmp_path):
    import shutil

    from focalcli.io.stack import scan_stack

    for p in sorted((shared_data / "stacks" / "pcb" / "pcb").glob("pcb_00*.jpg")):  # not expected.jpg
        shutil.copy(p, tmp_path / p.name)
    reg = register_stack(scan_stack(tmp_path), AlignConfig(max_size=512))
    assert not reg.bad and min(f.score for f in reg.frames) > 0.9
    scales = [f.scale for f in reg.frames]  # the near frames show the board larger: 3.8 % first to last
    assert scales == sorted(scales, reverse=True) and 1.03 < scales[0] / scales[-1] < 1.045
