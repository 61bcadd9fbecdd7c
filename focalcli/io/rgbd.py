"""RGB-D readers: find the scenes under a folder and decode each into sRGB + metric depth.

Layouts found by ``find_rgbd(root)`` (searched recursively; names join the folder path with ``__``):

- folder pairs: ``D/rgb/NAME.{png,jpg,ppm}`` (or ``D/color/``) with ``D/depth/NAME.npy`` (float metres),
  ``NAME.png``/``.pgm`` (16-bit, metres = value / depth_scale, default 1000 = millimetres) or ``NAME.pfm``
  (float metres). A Metric3D ``D/test_annotations.json`` pairs the files and gives each its depth_scale and
  intrinsics. ``D/rgb.png`` + ``D/depth.png`` (+ ``intrinsics.npy``) is one scene named after D.
- Middlebury stereo: ``view1`` + ``disp1.png`` (2005/2006), ``im2`` + ``disp2.pgm`` (2001/2003), ``im0`` +
  ``disp0.pgm``, ``scene1.row3.col3`` + ``truedisp.row3.col3.pgm`` (tsukuba); 0 = unknown disparity.
- HCI 4D light field: ``input_Cam040.png`` (centre view) + ``gt_disp_lowres.pfm``.
- Open3D samples: ``NYU_color`` + ``NYU_depth.pgm`` (raw Kinect disparity counts, little-endian despite PGM;
  metres = 351.3 / (1092.5 - raw), 2047 = none), ``SUN_color`` + ``SUN_depth.png`` (16 bit rotated by 3 bits;
  metres = ((v >> 3) | (v << 13)) / 1000), ``TUM_color`` + ``TUM_depth.png`` (metres = v / 5000); any other
  ``X_color`` + ``X_depth`` pair is read as a folder pair.
- NYU Depth v2 labeled ``*.mat`` (MATLAB v7.3 = HDF5, read with h5py): datasets ``images`` (h5py shape
  (N, 3, W, H), uint8) and ``depths`` ((N, W, H), float metres): MATLAB stores arrays column-major, so each
  image is transposed back to (3, H, W). One scene per index.

Pseudo-depth from disparity (Middlebury, HCI): without the calibration (Middlebury's per-scene ``dmin`` offset
is not shipped with the data) metric depth is unknown. Inverse depth is affine in disparity for a rectified pair
(``1/Z = (d + dmin) / (f B)``), so we keep that form and ASSUME the scene's valid disparity range spans
``PSEUDO_NEAR_M`` .. ``PSEUDO_FAR_M`` (1 m .. 2 m, typical of the table-top scenes). Relative blur between pixels is
then right up to one scene-wide factor; samples carry ``pseudo_depth: true`` in their metadata.

Finding scenes is ``focalcli.io.rgbd_scenes``, decoding them ``focalcli.io.rgbd_decode``; every name is re-exported
here.
"""

from focalcli.io.rgbd_decode import (
    PSEUDO_FAR_M,
    PSEUDO_NEAR_M,
    RGBDSample,
    disparity_to_pseudo_depth,
    load_rgbd,
    read_pfm,
)
from focalcli.io.rgbd_scenes import RGBDScene, find_rgbd, split_scenes

__all__ = [
    "PSEUDO_FAR_M",
    "PSEUDO_NEAR_M",
    "RGBDSample",
    "RGBDScene",
    "disparity_to_pseudo_depth",
    "find_rgbd",
    "load_rgbd",
    "read_pfm",
    "split_scenes",
]
