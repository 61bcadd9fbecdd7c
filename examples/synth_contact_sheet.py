"""Contact sheet of ``focal synth`` output: per scene, the nearest and farthest frame and the GT depth.

    python examples/synth_contact_sheet.py OUT sheet.png [--scenes NAME ...] [--height 180]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from focalcli.io.depth import colorize_depth
from focalcli.io.images import read_image, write_image


def _tile(img: np.ndarray, height: int, label: str) -> np.ndarray:
    h, w = img.shape[:2]
    scale = min(height / h, 1.5 * height / w)  # fit a height x 1.5 height box
    img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    img = np.ascontiguousarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))  # putText draws on 8 bit
    for color, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(img, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, color, thick, cv2.LINE_AA)
    return img.astype(np.float32) / 255.0


def sheet(out: Path, names: list[str], height: int) -> np.ndarray:
    rows = []
    for name in names:
        meta = json.loads((out / name / "stack" / "stack.json").read_text())
        frames, fd = meta["frames"], meta["focus_distances_m"]
        near, _ = read_image(out / name / "stack" / frames[0])
        far, _ = read_image(out / name / "stack" / frames[-1])
        depth = np.load(out / name / "depth.npy")
        gt = colorize_depth(depth).astype(np.float32) / 255.0
        valid = depth[depth > 0]
        row = [
            _tile(near, height, f"{name[-28:]}  near {fd[0]:.2f} m"),
            _tile(far, height, f"far {fd[-1]:.2f} m"),
            _tile(gt, height, f"GT {valid.min():.1f}-{valid.max():.1f} m" if valid.size else "GT (none)"),
        ]
        rows.append(np.concatenate(row, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    return np.concatenate(rows, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="a focal synth output folder")
    ap.add_argument("sheet", type=Path, help="the PNG to write")
    ap.add_argument("--scenes", nargs="*", help="scene names (default: the first 6)")
    ap.add_argument("--height", type=int, default=180, help="tile height (px)")
    args = ap.parse_args()
    names = args.scenes or [s["name"] for s in json.loads((args.out / "manifest.json").read_text())["scenes"]][:6]
    write_image(args.sheet, sheet(args.out, names, args.height))


if __name__ == "__main__":
    main()
