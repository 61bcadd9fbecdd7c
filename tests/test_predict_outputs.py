"""PredictOutputs: the output names of one stack, checked before any work starts."""

from pathlib import Path

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
