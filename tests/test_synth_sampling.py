import json

import pytest
import torch

from focalcli.errors import ConfigError, InputError
from focalcli.io.stack import Camera
from focalcli.synth.render import render_sample
from focalcli.synth.sampling import SamplingRanges, fixed_params, focus_schedule, parse_schedule, sample_params


def _depth(h=30, w=40):
    return torch.linspace(1.0, 4.0, w).expand(1, h, w).clone()


@pytest.mark.parametrize("text, kind, values", [
    ("depth", "depth", (5.0, 95.0)),
    ("depth:10,90", "depth", (10.0, 90.0)),
    ("uniform:0.5,3", "uniform", (0.5, 3.0)),
    ("list:2,1,0.5", "list", (2.0, 1.0, 0.5)),
    ("random", "random", ()),
])
def test_parse_schedule(text, kind, values):
    s = parse_schedule(text)
    assert (s.kind, s.values) == (kind, values)
    assert parse_schedule(str(s)) == s


@pytest.mark.parametrize("text", ["depth:90,10", "uniform:3", "list:", "list:1,1", "random:1", "spiral", "depth:a,b"])
def test_parse_schedule_rejects(text):
    with pytest.raises(ConfigError):
        parse_schedule(text)


def test_focus_schedules():
    d = _depth()
    assert focus_schedule(parse_schedule("list:2,1"), d, 7).tolist() == [1.0, 2.0]
    fd = focus_schedule(parse_schedule("depth:0,100"), d, 4)
    assert fd[0] == pytest.approx(1.0) and fd[-1] == pytest.approx(4.0, rel=1e-5)
    assert len(focus_schedule(parse_schedule("uniform:0.5,5"), d, 6)) == 6
    with pytest.raises(ConfigError):
        focus_schedule(parse_schedule("random"), d, 3)
    with pytest.raises(InputError):
        focus_schedule(parse_schedule("depth"), torch.zeros(1, 4, 4), 3)
    # never at or below the focal length
    assert float(focus_schedule(parse_schedule("list:0.01,1"), d, 2, min_distance=0.05)[0]) > 0.05


def test_fixed_params_records_the_schedule():
    cam = Camera(focal_length_mm=50.0, f_number=2.0, pixel_pitch_um=56.25)
    p = fixed_params(cam, parse_schedule("depth"), _depth(), 5)
    assert len(p.focus_distances_m) == 5 and p.schedule == "depth:5,95"
    json.dumps(p.to_json())


def test_sample_params_is_deterministic_recorded_and_renders():
    ranges = SamplingRanges(crop=(20, 24), frames=(3, 4))
    a = sample_params(torch.Generator().manual_seed(5), _depth(), ranges)
    b = sample_params(torch.Generator().manual_seed(5), _depth(), ranges)
    c = sample_params(torch.Generator().manual_seed(6), _depth(), ranges)
    assert a == b and a != c
    rec = a.to_json()
    json.dumps(rec)
    for key in ("camera", "focus_distances_m", "psf", "shot_noise", "read_noise", "exposure", "crop", "flip",
                "color_gains"):
        assert key in rec
    assert 3 <= len(a.focus_distances_m) <= 4 and len(a.exposure) == len(a.focus_distances_m)
    assert 1.4 <= a.camera.f_number <= 8.0 and 24 <= a.camera.focal_length_mm <= 85
    rgb = torch.rand(3, 30, 40, generator=torch.Generator().manual_seed(0))
    stack, gt = render_sample(rgb, _depth(), a, generator=torch.Generator().manual_seed(1))
    assert stack.frames.shape == (len(a.focus_distances_m), 3, 20, 24) and gt.shape == (1, 20, 24)
    with pytest.raises(InputError):
        sample_params(torch.Generator(), _depth(), SamplingRanges(crop=(100, 100)))
