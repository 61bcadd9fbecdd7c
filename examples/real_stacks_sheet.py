"""Contact sheet of real focal stacks: all-in-focus image, classic depth and model depth side by side.

    python examples/real_stacks_sheet.py ../shared/data/stacks docs/real_stacks.jpg [--height 200]

Runs ``focal predict`` with default options as a user would (``--method classic`` and ``--method model``, each
with its own preview) on the stacks whose license lets their pictures be committed (see
``../shared/data/README.md``): pcb/pcb (unaligned), pcb/pcb_depthmap, dsc-nikon, mcguinness/input and
dfd-breakfast (a 2-frame pair; its focus distances, 0.529 m and 0.869 m, come from its SOURCE.md).
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

STACKS = ("pcb/pcb_depthmap", "pcb/pcb", "dsc-nikon", "mcguinness/input", "dfd-breakfast")
BREAKFAST = {"frames": ["breakfast_near.png", "breakfast_far.png"], "focus_distances_m": [0.529, 0.869]}


def _label(img: np.ndarray, text: str) -> np.ndarray:
    for color, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(img, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, thick, cv2.LINE_AA)
    return img


def _tile(path: Path, height: int, text: str) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    img = cv2.resize(img, (round(w * height / h), height), interpolation=cv2.INTER_AREA)
    return _label(np.ascontiguousarray(img), text)


def _predict(stack: Path, out: Path, method: str) -> None:
    cmd = [sys.executable, "-m", "focalcli", "-q", "predict", str(stack), "-o", str(out / f"{method}.png"),
           "--method", method, "--preview", "--aif", str(out / "aif.jpg"), "--overwrite"]
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stacks", type=Path, help="the folder holding the real stacks (../shared/data/stacks)")
    ap.add_argument("out", type=Path, help="the contact sheet (.jpg or .png)")
    ap.add_argument("--height", type=int, default=200, help="row height (px)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in STACKS:
            stack = args.stacks / name
            if name == "dfd-breakfast":  # frames in natural sort order are far, near: give them their order
                copy = Path(tmp) / "breakfast"
                shutil.copytree(stack, copy)
                (copy / "stack.json").write_text(json.dumps(BREAKFAST))
                stack = copy
            out = Path(tmp) / name.replace("/", "_")
            out.mkdir()
            for method in ("classic", "model"):
                _predict(stack, out, method)
            tiles = [_tile(out / "aif.jpg", args.height, f"{name}: all-in-focus"),
                     _tile(out / "classic_preview.png", args.height, "classic"),
                     _tile(out / "model_preview.png", args.height, "model")]
            rows.append(np.hstack(tiles))
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    cv2.imwrite(str(args.out), sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
