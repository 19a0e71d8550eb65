"""``evaluate --held-out``: keep only the samples whose source the checkpoint's split held out."""
from __future__ import annotations

from collections.abc import Callable

from pairforge.evaluate.data import EvalItem
from pairforge.train.config import SplitConfig
from pairforge.train.split import Splitter


def held_out_selector(model_info: dict, origin: str) -> Callable[[EvalItem], bool]:
    split = model_info.get("split")
    if not split:
        raise ValueError(f"--held-out: {origin} records no split (it is not a pairforge checkpoint trained "
                         "with a `split:` section)")
    splitter = Splitter(SplitConfig.model_validate(split))
    return lambda item: splitter.held_out(item.meta, item.key.split("#")[0])
