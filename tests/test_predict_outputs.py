"""PredictOutputs: the output names of one stack, checked before any work starts."""

from pathlib import Path

import numpy as np
import pytest

from focalcli.errors import OutputError
from focalcli.predict import PredictOutputs


def test_preview_takes_part_in_the_duplicate_name_check(tmp_path):
    clash = PredictOutputs(depth=tmp_path / "d.png", aif=tmp_path / "d_preview.png", preview=True)
    with pytest.raises(OutputError, match="share one file name"):
        clash.check(overwrite=True, folders_exist=False)
    # without --preview the same names are fine
    PredictOutputs(depth=tmp_path / "d.png", aif=tmp_path / "d_preview.png").check(overwrite=True,
                                                                                   folders_exist=False)


def test_a_second_depth_file_of_another_stem_has_its_own_preview(tmp_path):
    out = PredictOutputs(depth=tmp_path / "d.png", more_depths=(tmp_path / "d.npy", tmp_path / "e.npy"), preview=True)
    assert out.preview_paths == [tmp_path / "d_preview.png", tmp_path / "e_preview.png"]
    kinds = dict(out.items())
    assert kinds["preview"] == tmp_path / "d_preview.png" and kinds["preview_2"] == tmp_path / "e_preview.png"
    with pytest.raises(OutputError, match="share one file name"):
        PredictOutputs(depth=tmp_path / "d.png", more_depths=(tmp_path / "e.npy",), confidence=Path(
            tmp_path / "e_preview.png"), preview=True).check(overwrite=True, folders_exist=False)


@pytest.mark.parametrize("units", ["m", "frame_index"])
def test_fill_uncovered_continues_the_depth_into_the_ring(units):
    from focalcli.predict import fill_uncovered

    h, w = 48, 64
    inverse = np.linspace(2.0, 1.0, w, dtype=np.float32)[None].repeat(h, 0)  # a slanted plane, linear in diopters
    depth = 1.0 / inverse if units == "m" else 1.0 + 3.0 * (2.0 - inverse)
    invalid = np.zeros((h, w), bool)
    invalid[:4], invalid[:, -5:] = True, True  # a border ring, as alignment leaves it
    holed = np.where(invalid, np.float32(np.nan), depth)
    filled = fill_uncovered(holed, invalid, units)
    assert np.isfinite(filled).all() and np.array_equal(filled[~invalid], depth[~invalid])
    err = np.abs(filled[invalid] - depth[invalid])
    median = np.abs(np.median(depth[~invalid]) - depth[invalid])  # what a blind fill would give
    assert err.mean() < 0.25 * median.mean() and err.max() < 0.25 * np.ptp(depth)  # the ring's nearest depth
