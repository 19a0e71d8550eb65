"""Import BasicSR 1.4.2 (the reference implementation) on current torchvision, for tests and benchmarks.

BasicSR imports ``torchvision.transforms.functional_tensor`` (removed in torchvision 0.17); a tiny module
of that name exposing ``rgb_to_grayscale`` is registered in ``sys.modules`` first. Nothing in the
library uses this: only tests and bench/ do.
"""
from __future__ import annotations

import sys
import types


def import_basicsr():
    """Return BasicSR's (degradations, img_process_util, diffjpeg) modules, or raise ImportError."""
    if "torchvision.transforms.functional_tensor" not in sys.modules:
        from torchvision.transforms import functional as tvf

        shim = types.ModuleType("torchvision.transforms.functional_tensor")
        shim.rgb_to_grayscale = tvf.rgb_to_grayscale
        sys.modules["torchvision.transforms.functional_tensor"] = shim
    from basicsr.data import degradations
    from basicsr.utils import diffjpeg, img_process_util

    return degradations, img_process_util, diffjpeg
