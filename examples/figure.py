"""Make a README figure from a stack and focal's outputs: first frame | last frame | depth preview | all-in-focus.

    focal predict examples/beetle -o out/depth.png --aif out/aif.png --preview
    python examples/figure.py examples/beetle out/depth_preview.png out/aif.png -o docs/beetle.jpg
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from focalcli.io.stack import scan_stack


def tile(path, height):
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return cv2.resize(img, (round(img.shape[1] * height / img.shape[0]), height), interpolation=cv2.INTER_AREA)


def label(img: np.ndarray, text: str, scale: float = 0.55) -> np.ndarray:
    """White text on a dark, half-transparent banner in the top-left corner (nothing clipped at any tile size)."""
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, 1
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x0, y0, x1, y1 = 0, 0, min(img.shape[1], tw + 10), th + base + 8
    img[y0:y1, x0:x1] = (0.35 * img[y0:y1, x0:x1]).astype(img.dtype)
    cv2.putText(img, text, (5, th + 4), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stack")
    ap.add_argument("preview")
    ap.add_argument("aif")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--height", type=int, default=240)
    a = ap.parse_args()
    sf = scan_stack(a.stack)
    tiles = [
        label(tile(sf.frame_paths[0], a.height), f"frame 1 of {len(sf)}, near"),
        label(tile(sf.frame_paths[-1], a.height), f"frame {len(sf)}, far"),
        label(tile(a.preview, a.height), "depth, focal predict"),
        label(tile(a.aif, a.height), "all-in-focus"),
    ]
    gap = np.full((a.height, 4, 3), 255, np.uint8)
    row = np.hstack([x for t in tiles for x in (t, gap)][:-1])
    cv2.imwrite(a.out, row, [cv2.IMWRITE_JPEG_QUALITY, 88])


if __name__ == "__main__":
    main()
