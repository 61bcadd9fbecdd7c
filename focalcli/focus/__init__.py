"""Classical depth from focus and all-in-focus fusion."""

from focalcli.focus.classic import all_in_focus, depth_from_focus
from focalcli.focus.depth import DepthResult
from focalcli.focus.measures import MEASURES, focus_measure

__all__ = ["MEASURES", "DepthResult", "all_in_focus", "depth_from_focus", "focus_measure"]
