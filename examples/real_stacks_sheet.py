"""Contact sheet of real focal stacks: ``focal predict`` as a user runs it, on every stack that may be shown.

    python examples/real_stacks_sheet.py ../shared/data/stacks docs/real_stacks.jpg          # default options
    python examples/real_stacks_sheet.py ../shared/data/stacks sheet.jpg --methods classic,model

Runs ``focal predict STACK -o d.png --aif aif.jpg --preview`` with default options (alignment ``auto``, the
default method) on the stacks whose license lets their pictures be committed (see ``../shared/data/README.md``):
pcb/pcb (unaligned), pcb/pcb_depthmap, dsc-nikon, mcguinness/input and dfd-breakfast. Each row: the first frame,
the all-in-focus image, a 2x crop of it (where ghosting would show), and the depth preview. With ``--methods`` each
named method gets its own preview column instead (and the crop is left out).

Two stacks get a ``stack.json`` in a temporary copy, as ``focal info`` advises (data, not options): dfd-breakfast
(a 2-frame pair whose file names sort far before near; focus distances 0.529 m and 0.869 m from its SOURCE.md) and
pcb/pcb, whose folder also holds ``expected.jpg``, focus-stack's own fused result, which ``focal info`` flags.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from figure import label  # examples/figure.py, beside this script

STACKS = ("pcb/pcb_depthmap", "pcb/pcb", "dsc-nikon", "mcguinness/input", "dfd-breakfast")
STACK_JSON = {
    "dfd-breakfast": {"frames": ["breakfast_near.png", "breakfast_far.png"], "focus_distances_m": [0.529, 0.869]},
    "pcb/pcb": {"frames": [f"pcb_{i:03d}.jpg" for i in range(1, 8)]},  # without expected.jpg
}


def _label(img: np.ndarray, text: str) -> np.ndarray:
    return label(img, text, scale=0.45)  # smaller tiles than the README figure's


def _tile(path: Path, height: int, text: str) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    img = cv2.resize(img, (round(w * height / h), height), interpolation=cv2.INTER_AREA)
    return _label(np.ascontiguousarray(img), text)


def _predict(stack: Path, out: Path, method: str | None) -> dict:
    name = method or "default"
    cmd = [sys.executable, "-m", "focalcli", "-q", "predict", str(stack), "-o", str(out / f"{name}.png"),
           *(["--method", method] if method else []), "--preview", "--aif", str(out / "aif.jpg"), "--overwrite"]
    subprocess.run(cmd, check=True)
    return json.loads((out / f"{name}.json").read_text())


def _crop(path: Path, height: int, text: str) -> np.ndarray:
    """A 2x crop of the middle of the image, as tall as the tiles."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    ch, cw = h // 2, w // 2
    crop = img[(h - ch) // 2:(h + ch) // 2, (w - cw) // 2:(w + cw) // 2]
    crop = cv2.resize(crop, (round(cw * height / ch), height), interpolation=cv2.INTER_AREA)
    return _label(np.ascontiguousarray(crop), text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stacks", type=Path, help="the folder holding the real stacks (../shared/data/stacks)")
    ap.add_argument("out", type=Path, help="the contact sheet (.jpg or .png)")
    ap.add_argument("--height", type=int, default=180, help="row height (px)")
    ap.add_argument("--methods", default="", help="comma-separated methods, one preview column each (default: "
                    "one run with default options)")
    ap.add_argument("--quality", type=int, default=80, help="JPEG quality")
    args = ap.parse_args()
    methods = [m for m in args.methods.split(",") if m] or [None]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in STACKS:
            stack = args.stacks / name
            if name in STACK_JSON:
                copy = Path(tmp) / f"{name.replace('/', '_')}_stack"
                shutil.copytree(stack, copy)
                (copy / "stack.json").write_text(json.dumps(STACK_JSON[name]))
                stack = copy
            out = Path(tmp) / name.replace("/", "_")
            out.mkdir()
            runs = {m: _predict(stack, out, m) for m in methods}
            first = stack / json.loads(json.dumps(next(iter(runs.values()))["frames"]))[0]
            align = next(iter(runs.values()))["align"]
            state = "aligned" if align["applied"] else "not aligned"
            tiles = [_tile(first, args.height, f"{name}: frame 1 of {len(next(iter(runs.values()))['frames'])}"),
                     _tile(out / "aif.jpg", args.height, f"all-in-focus ({state})")]
            if methods == [None]:
                tiles.append(_crop(out / "aif.jpg", args.height, "all-in-focus, 2x crop"))
            tiles += [_tile(out / f"{m or 'default'}_preview.png", args.height, f"depth ({m or 'default options'})")
                      for m in methods]
            rows.append(np.hstack(tiles))
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    cv2.imwrite(str(args.out), sheet, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]}, {args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
