"""The bad-input table: every command, fed what a new user (or an attacker) might feed it.

Each row is a set-up, a command, the documented exit code and (optionally) a fragment of the message. For every
row the command must end with exactly one line on stderr (``error: ...``, except for usage errors, which are
Click's), no traceback, and no file created, changed or left behind in the working folder; rows that may keep
finished work say which files. Exit codes: 2 usage, 3 input, 4 config, 5 model file, 6 output, 130 Ctrl-C.

Rows marked ``unprivileged`` meet an unwritable folder: as root (which writes anywhere) the command runs with the
effective uid of ``nobody``; otherwise the folder's mode does it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from focalcli.cli.app import app
from tests.cli import bad_inputs as b
from tests.cli.bad_inputs import Template

T = Template(Path("/nonexistent"))  # its root is set by the session fixture
runner = CliRunner()


@dataclass(frozen=True)
class Case:
    id: str
    cmd: str  # the focal command line, paths relative to the case's working folder
    code: int  # the documented exit code
    setup: tuple = ()  # asset names to copy ("stack" or "stack:s") and set-up callables, in order
    fragment: str = ""  # must appear in the error line
    unprivileged: bool = False  # run without the right to write into read-only folders
    fault: str | None = None  # see FAULTS
    keeps: tuple[str, ...] = ()  # files that may remain (finished work the command keeps on purpose)
    marks: tuple = ()

    def param(self):
        return pytest.param(self, id=self.id, marks=list(self.marks))


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


# name -> (module attribute to replace, replacement)
FAULTS: dict[str, tuple[str, Callable]] = {
    "disk full at rename": ("focalcli.io.atomic.os.replace", _enospc),
    "disk full in np.save": ("numpy.save", _enospc),
    "Ctrl-C while writing the all-in-focus image": ("focalcli.predict.run.write_image", _interrupt),
    "Ctrl-C while rendering": ("focalcli.synthesize.render_sample", _interrupt),
}

STACK_SETUPS: dict[str, tuple[tuple, str, bool]] = {
    # kind -> (set-up of the bad stack folder "x", message fragment, found without decoding pixels)
    "missing": ((), "no such folder", True),
    "a file": ((b.write("x", "not a folder"),), "not a folder", True),
    "empty": ((b.mkdir("x"),), "no images", True),
    "one frame": (("stack:x", b.remove("x/stack.json"), b.remove("x/frame_01.png"), b.remove("x/frame_02.png")),
                  "only one frame", True),
    "unreadable frame": (("stack:x", b.write("x/frame_01.png", b"\x89PNG\r\n\x1a\nbroken")), "frame_01.png", True),
    "zero-byte frame": (("stack:x", b.write("x/frame_01.png", b"")), "frame_01.png", True),
    "text file": (("stack:x", b.remove("x/stack.json"), b.write("x/notes.docx", "x")), "not an image", True),
    "camera RAW": (("stack:x", b.remove("x/stack.json"), b.write("x/IMG_1.cr2", "x")), "RAW", True),
    "sizes differ": (("stack:x", b.image("x/frame_02.png", 30, 40)), "differs", True),
    "frame is a folder": (("stack:x", b.remove("x/frame_02.png"), b.mkdir("x/frame_02.png")), "frame_02.png", True),
    "json syntax": (("stack:x", b.write("x/stack.json", "{not json")), "not valid JSON", True),
    "json list": (("stack:x", b.write_json("x/stack.json", [1, 2])), "JSON object", True),
    "json frames not a list": (("stack:x", b.write_json("x/stack.json", {"frames": "a.png"})), "list of file names",
                               True),
    "json missing frame": (("stack:x", b.write_json("x/stack.json", {"frames": ["frame_00.png", "ghost.png"]})),
                           "ghost.png", True),
    "json distance count": (("stack:x", b.write_json("x/stack.json", {"focus_distances_m": [1.0, 2.0]})),
                            "2 focus distances for 3 frames", True),
    "json zero distance": (("stack:x", b.write_json("x/stack.json", {"focus_distances_m": [1.0, 0.0, 2.0]})),
                           "positive", True),
    "json NaN distance": (("stack:x", b.write("x/stack.json", '{"focus_distances_m": [1.0, NaN, 2.0]}')),
                          "positive", True),
    "json text distance": (("stack:x", b.write_json("x/stack.json", {"focus_distances_m": ["1", 2, 3]})),
                           "positive", True),
    "json repeated distance": (("stack:x", b.write_json("x/stack.json", {"focus_distances_m": [1, 1, 2]})),
                               "share a focus distance", True),
    "json ../ frame": (("stack", "stack:x", b.edit_json("x/stack.json", lambda j: j.update(
        frames=["../stack/frame_00.png", "frame_01.png", "frame_02.png"]))), "inside the stack folder", True),
    "json absolute frame": (("stack:x", b.edit_json("x/stack.json", lambda j: j.update(
        frames=["/etc/hostname", "frame_01.png", "frame_02.png"]))), "inside the stack folder", True),
    "json frame twice": (("stack:x", b.write_json("x/stack.json", {"frames": ["frame_00.png", "frame_00.png"]})),
                         "listed twice", True),
    "json unknown camera key": (("stack:x", b.edit_json("x/stack.json", lambda j: j.update(camera={"zoom": 3}))),
                                "unknown camera key", True),
    "json negative f-number": (("stack:x", b.edit_json("x/stack.json", lambda j: j.update(camera={"f_number": -2}))),
                               "positive", True),
    "1x1 frames": ((b.image("x/a.png", 1, 1), b.image("x/b.png", 1, 1), b.image("x/c.png", 1, 1)),
                   "at least 8 pixels", True),
    "decompression bomb": (("stack:x", b.png_bomb("x/frame_01.png")), "too large", True),
    "damaged JPEG data": (("jpgstack:x", b.damaged_jpeg("x/frame_01.jpg")), "damaged JPEG", False),
    "truncated JPEG": (("jpgstack:x", b.write("x/frame_01.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")),
                       "frame_01.jpg", True),
}

STACK_COMMANDS = {"info": "info x", "predict": "predict x -o d.png", "fuse": "fuse x -o a.png",
                  "align": "align x -o al", "predict model": "predict x -o d.png --method model --weights m.st"}


def _stack_cases() -> Iterator[Case]:
    for kind, (setup, fragment, in_header) in STACK_SETUPS.items():
        for command, cmd in STACK_COMMANDS.items():
            if command == "info" and not in_header:
                continue  # info reads headers only
            if command == "predict model" and kind not in ("sizes differ", "damaged JPEG data", "json ../ frame",
                                                            "1x1 frames", "decompression bomb"):
                continue
            extra = ("model.safetensors:m.st",) if command == "predict model" else ()
            yield Case(f"{command}: {kind}", cmd, 3, (*setup, *extra), fragment)


MODEL_FILES: dict[str, tuple[tuple, str]] = {
    # model file "m.st" -> (set-up, fragment)
    "missing": ((), "no such model file"),
    "garbage": ((b.write("m.st", b"\x00" * 64),), "not a safetensors file"),
    "a folder": ((b.mkdir("m.st"),), "m.st"),
    "heads 0": ((T.model_with("m.st", config={"heads": 0}),), "heads"),
    "patch_size 0": ((T.model_with("m.st", config={"patch_size": 0}),), "patch_size"),
    "width -192": ((T.model_with("m.st", config={"width": -192}),), "width"),
    "width 65536": ((T.model_with("m.st", config={"width": 65536}),), "width"),
    "17 G parameters": ((T.model_with("m.st", config={"width": 16384, "lstm_hidden": 16384, "heads": 16}),),
                        "parameters"),
    "depth 0 and hooks": ((T.model_with("m.st", config={"depth": 0, "hooks": []}),), "depth"),
    "mlp_ratio NaN": ((T.model_with("m.st", raw_config=json.dumps({**b.TINY, "mlp_ratio": "NaN"})),), "mlp_ratio"),
    "unknown config key": ((T.model_with("m.st", config={"colour": "blue"}),), "unknown key(s) colour"),
    "config not JSON": ((T.model_with("m.st", raw_config="{oops"),), "config"),
    "config a list": ((T.model_with("m.st", raw_config="[1, 2]"),), "JSON object"),
    "no config": ((T.model_with("m.st", drop_meta="config"),), "metadata lacks config"),
    "a tensor missing": ((T.model_with("m.st", drop_tensor=True),), "missing tensor"),
    "a checkpoint instead": (("ckpt.pt:m.st",), "not a safetensors file"),
    "a pickle that runs code": ((b.evil_pickle("m.st"),), "not a safetensors file"),
}


def _model_cases() -> Iterator[Case]:
    for kind, (setup, fragment) in MODEL_FILES.items():
        yield Case(f"predict --weights: {kind}", "predict s -o d.png --method model --weights m.st", 5,
                   ("stack:s", *setup), fragment)
        if kind in ("missing", "garbage", "heads 0", "17 G parameters", "a tensor missing"):
            yield Case(f"eval --weights: {kind}", "eval --weights m.st --data stacks:data", 5, ("data", *setup),
                       fragment)


def _drop(key):
    return lambda s: s.pop(key)


def _set(key, value):
    return lambda s: s.__setitem__(key, value)


def _model_option(**kw):
    return lambda s: s["config"]["model_options"].update(kw)


CHECKPOINTS: dict[str, tuple[tuple, str]] = {
    # checkpoint "c.pt" for focal export -> (set-up, fragment)
    "missing": ((), "no such checkpoint"),
    "empty file": ((b.write("c.pt", b""),), "not a readable"),
    "garbage": ((b.write("c.pt", b"junk" * 10),), "not a readable"),
    "a folder": ((b.mkdir("c.pt"),), "no such checkpoint"),
    "a pickle that runs code": ((b.evil_pickle("c.pt"),), "never unpickles"),
    "a model file instead": (("model.safetensors:c.pt",), "not a readable"),
    "a list": ((T.checkpoint_with("c.pt", lambda s: [1, 2], replace=True),), "not a focal training checkpoint"),
    "no format": ((T.checkpoint_with("c.pt", _drop("format")),), "not a focal training checkpoint"),
    "no model": ((T.checkpoint_with("c.pt", _drop("model")),), "no 'model'"),
    "no config": ((T.checkpoint_with("c.pt", _drop("config")),), "no 'config'"),
    "no step": ((T.checkpoint_with("c.pt", _drop("step")),), "no 'step'"),
    "step is text": ((T.checkpoint_with("c.pt", _set("step", "7")),), "'step'"),
    "model is a list": ((T.checkpoint_with("c.pt", _set("model", [1])),), "'model'"),
    "model holds a number": ((T.checkpoint_with("c.pt", lambda s: s["model"].update(x=3)),), "'model' holds"),
    "config heads 0": ((T.checkpoint_with("c.pt", _model_option(heads=0)),), "heads"),
    "config width 65536": ((T.checkpoint_with("c.pt", _model_option(width=65536)),), "width"),
    "config 17 G parameters": ((T.checkpoint_with("c.pt", _model_option(width=16384, lstm_hidden=16384, heads=16)),),
                               "parameters"),
    "config unknown key": ((T.checkpoint_with("c.pt", lambda s: s["config"].update(colour=1)),), "unknown key"),
    "weights do not fit": ((T.checkpoint_with("c.pt", lambda s: s["model"].pop(sorted(s["model"])[0])),),
                           "do not fit"),
}


def _checkpoint_cases() -> Iterator[Case]:
    for kind, (setup, fragment) in CHECKPOINTS.items():
        yield Case(f"export: {kind}", "export c.pt -o m.safetensors", 5, setup, fragment)


TRAIN = ("train -o r --device cpu --workers 0 --steps 1 --batch-size 1 --crop 16 --val-every 0 --data stacks:data "
         "--model focdepthformer-tiny")
TINY_TOML = "[model_options]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in b.TINY.items()
                                          if k != "focus_distance_aware")


def _train_cases() -> Iterator[Case]:
    rows = [
        ("missing --config", f"{TRAIN} --config nope.toml", 4, (), "no such config file"),
        ("--config not TOML", f"{TRAIN} --config c.toml", 4, (b.toml("c.toml", "steps = [\n"),), "not valid TOML"),
        ("--config unknown key", f"{TRAIN} --config c.toml", 4, (b.toml("c.toml", "stepz = 3\n"),), "stepz"),
        ("--config wrong type", f"{TRAIN} --config c.toml", 4, (b.toml("c.toml", 'steps = "many"\n'),), "'steps'"),
        ("--config frames_max < frames_min", f"{TRAIN} --config c.toml", 4,
         (b.toml("c.toml", "frames_min = 5\nframes_max = 3\n"),), "frames_max"),
        ("--config lr 0", f"{TRAIN} --config c.toml", 4, (b.toml("c.toml", "lr = 0.0\n"),), "lr"),
        ("--data weight nan", f"{TRAIN} --data procedural:nan", 4, (), "weight"),
        ("--data weight inf", f"{TRAIN} --data procedural:inf", 4, (), "weight"),
        ("--data weight -1", f"{TRAIN} --data procedural:-1", 4, (), "weight"),
        ("--data weight 0", f"{TRAIN} --data stacks:data:0", 4, (), "weight"),
        ("--data unknown kind", f"{TRAIN} --data nyu:x", 4, (), "unknown kind"),
        ("--data no path", f"{TRAIN} --data ddff", 4, (), "needs a path"),
        ("--data missing folder", f"{TRAIN} --data stacks:nope", 3, (), "nope"),
        ("--data synth missing folder", f"{TRAIN} --data synth:nope", 3, (), "nope"),
        ("--data ddff group keys", f"{TRAIN} --data ddff:g.h5", 3, (b.hdf5_group("g.h5", "stack_train"),),
         "stack_train"),
        ("--model unknown", f"{TRAIN} --model nope", 4, (), "unknown model"),
        ("--render unknown", f"{TRAIN} --render gpu", 4, (), "render must be auto, workers or device"),
        ("synth_options f_number from 0", f"{TRAIN} --data procedural --config c.toml", 4,
         (b.toml("c.toml", "[synth_options]\nf_number = [0.0, 8.0]\n"),), "f_number"),
        ("synth_options f_number reversed", f"{TRAIN} --data procedural --config c.toml", 4,
         (b.toml("c.toml", "[synth_options]\nf_number = [8.0, 1.4]\n"),), "f_number"),
        ("synth_options f_number one value", f"{TRAIN} --data procedural --config c.toml", 4,
         (b.toml("c.toml", "[synth_options]\nf_number = [8.0]\n"),), "f_number"),
        ("synth_options eval_f_number 0", f"{TRAIN} --data procedural --config c.toml", 4,
         (b.toml("c.toml", "[synth_options]\neval_f_number = 0.0\n"),), "eval_f_number"),
        ("model_options heads 0", f"{TRAIN} --config c.toml", 4,
         (b.toml("c.toml", TINY_TOML.replace("heads = 2", "heads = 0")),), "heads"),
        ("model_options patch_size 0", f"{TRAIN} --config c.toml", 4,
         (b.toml("c.toml", TINY_TOML + "patch_size = 0\n"),), "patch_size"),
        ("model_options 17 G parameters", f"{TRAIN} --config c.toml", 4,
         (b.toml("c.toml", "[model_options]\nwidth = 16384\nlstm_hidden = 16384\nheads = 16\n"),), "parameters"),
        ("crop larger than the data", f"{TRAIN} --crop 64 --config c.toml", 3, (b.toml("c.toml", TINY_TOML),),
         "smaller than the training crop"),
        ("--resume without a run", f"{TRAIN} --resume", 5, (), "no such checkpoint"),
        ("--resume garbage last.pt", "train -o run --resume --steps 3", 5, ("run", b.write("run/last.pt", b"x" * 9)),
         "not a readable"),
        ("--resume empty last.pt", "train -o run --resume --steps 3", 5, ("run", b.write("run/last.pt", b"")),
         "not a readable"),
        ("--resume corrupt config.json", "train -o run --resume --steps 3", 4,
         ("run", b.write("run/config.json", '{"steps": ')), "config.json"),
        ("--resume config.json a list", "train -o run --resume --steps 3", 4,
         ("run", b.write("run/config.json", "[1]")), "JSON object"),
        ("--resume last.pt without rng", "train -o run --resume --steps 3", 5,
         ("run", T.checkpoint_with("run/last.pt", _drop("rng"))), "no 'rng'"),
        ("--resume other model", "train -o run --resume --steps 3 --model focdepthformer-small", 4, ("run",),
         "cannot resume with a different model"),
        ("--resume with --overwrite", f"{TRAIN} --resume --overwrite", 2, (), ""),
        ("--steps 0", "train -o r --steps 0", 2, (), ""),
        ("-o is a file", TRAIN, 6, (b.write("r", "x"),), "not a folder"),
        ("-o parent is a file", TRAIN.replace("-o r", "-o f/r"), 6, (b.write("f", "x"),), "is a file"),
        ("-o not empty", TRAIN, 6, (b.write("r/notes.txt", "mine"),), "not empty"),
    ]
    for name, cmd, code, setup, fragment in rows:
        yield Case(f"train: {name}", cmd, code, ("data", *setup), fragment)
    yield Case("train: --device cuda without CUDA", f"{TRAIN} --device cuda", 4, ("data",), "CUDA",
               marks=(pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available"),))


SYNTH = "synth -o o --workers 1 --frames 2"


def _synth_cases() -> Iterator[Case]:
    rows = [
        ("f-number 0.1, focal length 500 mm", f"{SYNTH} --rgbd rgbd --f-number 0.1 --focal-length 500", 4, (),
         "impossible"),
        ("f-number nan", f"{SYNTH} --rgbd rgbd --f-number nan", 4, (), "finite"),
        ("f-number inf", f"{SYNTH} --rgbd rgbd --f-number inf", 4, (), "finite"),
        ("negative focal length", f"{SYNTH} --rgbd rgbd --focal-length -5", 4, (), "finite"),
        ("zero sensor width", f"{SYNTH} --rgbd rgbd --sensor-width 0", 4, (), "finite"),
        ("focus inside the focal length", f"{SYNTH} --rgbd rgbd --schedule uniform:0.01,8", 4, (),
         "beyond the focal length"),
        ("focus list inside the focal length", f"{SYNTH} --rgbd rgbd --schedule list:0.02,1", 4, (),
         "beyond the focal length"),
        ("unknown schedule", f"{SYNTH} --rgbd rgbd --schedule magic:1", 4, (), "schedule"),
        ("reversed schedule", f"{SYNTH} --rgbd rgbd --schedule uniform:8,0.5", 4, (), "NEAR < FAR"),
        ("random schedule", f"{SYNTH} --rgbd rgbd --schedule random", 4, (), "training loaders"),
        ("nothing to render", SYNTH, 4, (), "nothing to render"),
        ("--rgbd missing", f"{SYNTH} --rgbd nope", 3, (), "no such folder"),
        ("--rgbd empty", f"{SYNTH} --rgbd e", 3, (b.mkdir("e"),), "no RGB-D scenes"),
        ("bad intrinsics.npy", f"{SYNTH} --rgbd k", 3,
         (b.image("k/rgb.png", 24, 32), b.write("k/depth.npy", b"\x93NUMPY junk"), b.write("k/intrinsics.npy", "x")),
         "intrinsics.npy"),
        ("intrinsics.npy not 3x3", f"{SYNTH} --rgbd k", 3,
         (b.image("k/rgb.png", 24, 32), _npy("k/depth.npy", (24, 32), 1.5), _npy("k/intrinsics.npy", (2,), 1.0)),
         "3x3"),
        ("PFM header with negative size", f"{SYNTH} --rgbd h", 3,
         (b.image("h/input_Cam040.png", 24, 32), b.write("h/gt_disp_lowres.pfm", b"Pf\n-32 24\n-1\n" + b"\0" * 64)),
         "PFM"),
        ("PFM header not numbers", f"{SYNTH} --rgbd h", 3,
         (b.image("h/input_Cam040.png", 24, 32), b.write("h/gt_disp_lowres.pfm", b"Pf\nab cd\n-1\n" + b"\0" * 64)),
         "PFM"),
        ("depth all invalid", f"{SYNTH} --rgbd z", 3,
         (b.image("z/rgb/a.png", 24, 32), _npy("z/depth/a.npy", (24, 32), 0.0)), "no valid"),
        ("depth of another size", f"{SYNTH} --rgbd z", 3,
         (b.image("z/rgb/a.png", 24, 32), _npy("z/depth/a.npy", (20, 32), 1.0)), "depth is 32x20"),
        ("--bit-depth 12", f"{SYNTH} --rgbd rgbd --bit-depth 12", 2, (), ""),
        ("--procedural-size 10", f"{SYNTH} --procedural 1 --procedural-size 10", 2, (), ""),
        ("--procedural-size 4x4", f"{SYNTH} --procedural 1 --procedural-size 4x4", 4, (), "8x8"),
        ("--method magic", f"{SYNTH} --rgbd rgbd --method magic", 4, (), "render method"),
        ("--psf magic", f"{SYNTH} --rgbd rgbd --psf magic", 4, (), "PSF"),
        ("-o is a file", f"{SYNTH} --rgbd rgbd", 6, (b.write("o", "x"),), "not a folder"),
        ("-o parent is a file", f"{SYNTH} --rgbd rgbd".replace("-o o", "-o f/o"), 6, (b.write("f", "x"),),
         "is a file"),
        ("foreign manifest.json", f"{SYNTH} --rgbd rgbd", 6, (b.write("o/manifest.json", "{}"),),
         "not written by focal synth"),
        ("scene folder not ours", f"{SYNTH} --rgbd rgbd", 6, (b.write("o/a/notes.txt", "mine"),),
         "not written by focal synth"),
    ]
    for name, cmd, code, setup, fragment in rows:
        yield Case(f"synth: {name}", cmd, code, ("rgbd", *setup), fragment)


def _npy(path: str, shape: tuple, value: float):
    def setup(w: Path) -> None:
        import numpy as np

        (w / path).parent.mkdir(parents=True, exist_ok=True)
        np.save(w / path, np.full(shape, value, np.float32))

    return setup


def _eval_cases() -> Iterator[Case]:
    rows = [
        ("no stacks", "eval --method classic --data stacks:e", 3, (b.mkdir("e"),), "e"),
        ("no valid ground truth", "eval --method classic --data stacks:data", 3,
         (_npy("data/s0/depth.npy", (20, 24), 0.0), _npy("data/s1/depth.npy", (20, 24), 0.0)), "valid ground truth"),
        ("--data missing", "eval --method classic --data stacks:nope", 3, (), "nope"),
        ("ddff missing file", "eval --method classic --data ddff:nope.h5", 3, (), "no such file"),
        ("ddff keys are groups", "eval --method classic --data ddff:g.h5", 3, (b.hdf5_group("g.h5", "stack_val"),),
         "stack_val"),
        ("ddff not HDF5", "eval --method classic --data ddff:g.h5", 3, (b.write("g.h5", "x"),), "HDF5"),
        ("--data weight nan", "eval --method classic --data procedural:nan", 4, (), "weight"),
        ("--protocol magic", "eval --method classic --data stacks:data --protocol magic", 2, (), ""),
        ("--weights and --method", "eval --method classic --weights m --data stacks:data", 2, (), ""),
        ("neither --weights nor --method", "eval --data stacks:data", 2, (), ""),
        ("--method magic", "eval --method magic --data stacks:data", 2, (), ""),
        ("--json wrong extension", "eval --method classic --data stacks:data --json r.txt", 6, (),
         "unknown output extension"),
        ("--json exists", "eval --method classic --data stacks:data --json r.json", 6, (b.write("r.json", "{}"),),
         "exists already"),
        ("--json parent is a file", "eval --method classic --data stacks:data --json f/r.json", 6,
         (b.write("f", "x"),), "is a file"),
    ]
    for name, cmd, code, setup, fragment in rows:
        yield Case(f"eval: {name}", cmd, code, ("data", *setup), fragment)


def _output_cases() -> Iterator[Case]:
    rows = [
        ("predict: parent is a file", "predict s -o f/d.png", 6, (b.write("f", "x"),), "is a file"),
        ("predict: grandparent is a file", "predict s -o f/g/d.png", 6, (b.write("f", "x"),), "is a file"),
        ("predict: --aif parent is a file", "predict s -o d.png --aif f/a.png", 6, (b.write("f", "x"),), "is a file"),
        ("predict: --range far < near", "predict s -o d.png --preview --range 2,1", 2, (), ""),
        ("predict: --range not numbers", "predict s -o d.png --preview --range a,b", 2, (), ""),
        ("predict: --colormap magic", "predict s -o d.png --preview --colormap magic", 2, (), ""),
        ("predict: --align magic", "predict s -o d.png --align sideways", 2, (), ""),
        ("predict: --ply without focus distances", "predict s -o d.png --ply c.ply", 3, (), "--ply needs"),
        ("predict: --ply extension", "predict s -o d.png --ply c.obj", 6, (), "unknown output extension"),
        ("predict: two -o, one name", "predict s -o d.png -o d.png", 6, (), "share one file name"),
        ("predict: depth extension", "predict s -o d.jpg", 6, (), "unknown output extension"),
        ("predict: --aif extension", "predict s -o d.png --aif a.xyz", 6, (), "unknown output extension"),
        ("predict: --confidence extension", "predict s -o d.png --confidence c.jpg", 6, (), "unknown output extension"),
        ("predict: depth is a folder", "predict s -o d.png", 6, (b.mkdir("d.png"),), "is a folder"),
        ("predict: depth exists", "predict s -o d.png", 6, (b.write("d.png", "old"),), "exists already"),
        ("predict: sidecar exists", "predict s -o d.png", 6, (b.write("d.json", "old"),), "exists already"),
        ("predict: preview exists", "predict s -o d.png --preview", 6, (b.write("d_preview.png", "old"),),
         "exists already"),
        ("predict: two outputs, one name", "predict s -o d.png --aif d.png", 6, (), "share one file name"),
        ("predict: --method magic", "predict s -o d.png --method magic", 2, (), ""),
        ("predict: --precision magic", "predict s -o d.png --method model --precision fp64", 2, (), ""),
        ("predict: --device cuda:x", "predict s -o d.png --method model --device gpu0", 4, (), "unknown device"),
        ("fuse: parent is a file", "fuse s -o f/a.png", 6, (b.write("f", "x"),), "is a file"),
        ("fuse: --align magic", "fuse s -o a.png --align sideways", 2, (), ""),
        ("fuse: extension", "fuse s -o a.npy", 6, (), "unknown output extension"),
        ("fuse: exists", "fuse s -o a.png", 6, (b.write("a.png", "old"),), "exists already"),
        ("fuse: is a folder", "fuse s -o a.png", 6, (b.mkdir("a.png"),), "is a folder"),
        ("fuse: --measure magic", "fuse s -o a.png --measure magic", 2, (), ""),
        ("align: into its input", "align s -o s --overwrite", 6, (), "replace the input"),
        ("align: parent is a file", "align s -o f/al", 6, (b.write("f", "x"),), "is a file"),
        ("align: exists", "align s -o al", 6, (b.mkdir("al"),), "exists already"),
        ("align: is a file", "align s -o al", 6, (b.write("al", "x"),), "not a folder"),
        ("align: --model magic", "align s -o al --model magic", 2, (), ""),
        ("align: --reference x", "align s -o al --reference x", 2, (), ""),
        ("export: extension", "export ckpt.pt -o m.bin", 6, ("ckpt.pt",), "unknown output extension"),
        ("export: parent is a file", "export ckpt.pt -o f/m.safetensors", 6, ("ckpt.pt", b.write("f", "x")),
         "is a file"),
        ("export: exists", "export ckpt.pt -o m.safetensors", 6, ("ckpt.pt", b.write("m.safetensors", "old")),
         "exists already"),
        ("info: --bogus", "info s --bogus", 2, (), ""),
        ("models: --bogus", "models --bogus", 2, (), ""),
        ("unknown command", "frobnicate", 2, (), ""),
    ]
    for name, cmd, code, setup, fragment in rows:
        yield Case(name, cmd, code, ("stack:s", *setup), fragment)


def _batch_cases() -> Iterator[Case]:
    yield Case("batch predict: damaged frame data in the second stack", "predict jb -o out", 3,
               ("jpgstack:jb/s1", "jpgstack:jb/s2", b.damaged_jpeg("jb/s2/frame_01.jpg")), "s2/frame_01.jpg",
               keeps=("out", "out/s1", "out/s1/depth.png", "out/s1/depth.json"))
    yield Case("batch predict: damaged frame data in the first stack", "predict jb -o out", 3,
               ("jpgstack:jb/s1", "jpgstack:jb/s2", b.damaged_jpeg("jb/s1/frame_01.jpg")), "s1/frame_01.jpg")
    yield Case("batch predict: a stack of the batch is invalid", "predict batch -o out", 3,
               ("batch", b.write("batch/s2/frame_01.png", "broken")), "frame_01.png")
    yield Case("batch predict: out is a file", "predict batch -o out", 6, ("batch", b.write("out", "x")),
               "not a folder")
    yield Case("batch predict: a stack's folder is a file", "predict batch -o out", 6,
               ("batch", b.write("out/s2", "x")), "not a folder")
    yield Case("batch predict: part of an earlier result", "predict batch -o out", 6,
               ("batch", b.write("out/s1/depth.png", "old")), "not the complete result")
    yield Case("batch predict: parent is a file", "predict batch -o f/out", 6, ("batch", b.write("f", "x")),
               "is a file")
    yield Case("batch predict: output is the input", "predict batch -o batch", 6, ("batch",), "is the input")
    yield Case("batch predict: --format jpg", "predict batch -o out --format jpg", 2, ("batch",), "")


def _write_failure_cases() -> Iterator[Case]:
    commands = {
        "predict": ("predict s -o {o}d.png --aif {o}a.png --preview", ("stack:s",)),
        "batch predict": ("predict batch -o {o}out", ("batch",)),
        "fuse": ("fuse s -o {o}a.png", ("stack:s",)),
        "align": ("align s -o {o}al", ("stack:s",)),
        "synth": ("synth --procedural 1 --procedural-size 40x30 --frames 2 --workers 1 -o {o}o", ()),
        "export": ("export ckpt.pt -o {o}m.safetensors", ("ckpt.pt",)),
        "train": (TRAIN.replace("-o r", "-o {o}r") + " --config t.toml", ("data", b.toml("t.toml", TINY_TOML))),
        "eval": ("eval --method classic --data stacks:data --json {o}r.json", ("data",)),
    }
    for name, (cmd, setup) in commands.items():
        yield Case(f"{name}: unwritable output folder", cmd.format(o="ro/"), 6, (*setup, b.unwritable("ro")),
                   "cannot write", unprivileged=True)
        yield Case(f"{name}: disk full", cmd.format(o=""), 6, setup, "No space left on device",
                   fault="disk full at rename")
    yield Case("predict: disk full while writing .npy", "predict s -o d.npy", 6, ("stack:s",), "No space left",
               fault="disk full in np.save")
    yield Case("synth: disk full while writing depth.npy", "synth --procedural 1 --procedural-size 40x30 --frames 2 "
               "--workers 1 -o o", 6, (), "No space left", fault="disk full in np.save")
    yield Case("predict: Ctrl-C while writing outputs", "predict s -o d.png --aif a.png", 130, ("stack:s",),
               "interrupted", fault="Ctrl-C while writing the all-in-focus image")
    yield Case("synth: Ctrl-C while rendering", "synth --procedural 2 --procedural-size 40x30 --frames 2 "
               "--workers 1 -o o", 130, (), "interrupted", fault="Ctrl-C while rendering")


CASES = [*_stack_cases(), *_model_cases(), *_checkpoint_cases(), *_train_cases(), *_synth_cases(), *_eval_cases(),
         *_output_cases(), *_batch_cases(), *_write_failure_cases()]


def test_the_table_is_large_and_ids_are_unique():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    T.root = b.build_template(tmp_path_factory.mktemp("bad-input-template"))
    return T.root


@pytest.fixture
def workdir(template) -> Iterator[Path]:
    """A fresh folder that ``nobody`` can enter too (pytest's own tmp folders are private to their owner)."""
    w = Path(tempfile.mkdtemp(prefix="focal-bad-input-"))
    os.chmod(w, 0o755)
    try:
        yield w
    finally:
        for p in [w, *w.rglob("*")]:  # folders the case made read-only
            if p.is_dir() and not p.is_symlink():
                with contextlib.suppress(OSError):
                    os.chmod(p, 0o755)
        shutil.rmtree(w, ignore_errors=True)


def _snapshot(root: Path) -> dict[str, object]:
    out = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
    return out


@contextlib.contextmanager
def _unprivileged(on: bool) -> Iterator[None]:
    if not on or os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def _set_up(case: Case, w: Path) -> None:
    for step in case.setup:
        if isinstance(step, str):
            name, _, to = step.partition(":")
            T.copy(name, to or None)(w)
        else:
            step(w)


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input(case: Case, workdir: Path, monkeypatch):
    _set_up(case, workdir)
    before = _snapshot(workdir)
    monkeypatch.chdir(workdir)
    if case.fault:
        target, replacement = FAULTS[case.fault]
        monkeypatch.setattr(target, replacement)
    with _unprivileged(case.unprivileged), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, shlex.split(case.cmd))
    assert not [str(w.message) for w in caught], "a warning is one more line on stderr"
    out = result.stdout + result.stderr
    assert result.exit_code == case.code, (result.exit_code, out, result.exception)
    assert "Traceback" not in out
    if case.code != 2:  # usage errors are Click's own (usage line + message)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert case.fragment in lines[0], (case.fragment, lines[0])
    after = _snapshot(workdir)
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and after[k] != before[k] and before[k] != "dir")
    assert new == sorted(case.keeps), f"new files: {new}"
    assert not changed, f"changed: {changed}"
    assert not (workdir / "pwned").exists()
