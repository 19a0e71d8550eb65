"""The registries (pairforge.registry): kinds map to config classes and lazily imported implementations,
and the config unions are built from them."""
from __future__ import annotations

import subprocess
import sys
from typing import Literal

import pytest

from pairforge.configbase import StrictModel
from pairforge.registry import (
    DEGRADERS,
    DIFFUSION_FAMILIES,
    FILTERS,
    REALWORLD_TYPES,
    SOURCES,
    Registry,
)


def test_a_registered_kind_joins_the_union_and_loads_its_implementation_lazily():
    reg = Registry("widget", modules=())

    @reg.register(impl="json:dumps", rank=3)
    class AConfig(StrictModel):
        kind: Literal["a"] = "a"

    @reg.register(impl="json:loads")
    class BConfig(StrictModel):
        kind: Literal["b"] = "b"
        n: int = 1

    class Holder(StrictModel):
        w: reg.union()  # type: ignore[valid-type]

    assert reg.kinds() == ["a", "b"]
    assert isinstance(Holder.model_validate({"w": {"kind": "b", "n": 2}}).w, BConfig)
    entry = reg.entry_for(AConfig())
    assert entry.options == {"rank": 3}
    import json

    assert entry.load("impl") is json.dumps
    with pytest.raises(KeyError, match="unknown widget 'c'; allowed: a, b"):
        reg.get("c")
    with pytest.raises(KeyError, match="registers no 'stage'"):
        entry.load("stage")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(BConfig)


def test_the_config_unions_are_the_registered_kinds():
    from pairforge.config import parse_config

    assert SOURCES.kinds() == ["bundled", "files", "synthesis"]
    assert FILTERS.kinds() == ["sanity", "iqa", "judge", "privacy", "dedup", "classifier"]
    assert DEGRADERS.kinds()[:3] == ["simple", "chain", "realworld"]
    assert DIFFUSION_FAMILIES.kinds() == ["flux", "sdxl"]
    with pytest.raises(ValueError, match="sanity"):  # an unknown kind lists the registered ones
        parse_config({"filters": [{"kind": "nope"}]})


def test_every_registered_implementation_imports():
    for reg, role in ((SOURCES, "stages"), (FILTERS, "stage"), (DEGRADERS, "degrader"), (REALWORLD_TYPES, "type"),
                      (DIFFUSION_FAMILIES, "family")):
        for e in reg.entries():
            assert e.load(role) is not None, (reg.what, e.kind)


def test_realworld_types_and_their_config_sections_come_from_the_registry():
    from pairforge.degradations.realworld import (
        NAMES,
        ORDER,
        TYPES,
        RealWorldDegradeConfig,
    )

    assert NAMES == tuple(REALWORLD_TYPES.kinds())
    assert set(ORDER) == set(NAMES) == set(TYPES)
    cfg = RealWorldDegradeConfig.model_validate({"haze": {"severity": "heavy"}, "weights": {"haze": 1.0}})
    assert cfg.haze.severity == "heavy"
    with pytest.raises(ValueError, match="fog"):
        RealWorldDegradeConfig.model_validate({"weights": {"fog": 1.0}})


def test_importing_the_config_imports_no_model_library():
    code = (
        "import sys; import pairforge.config, pairforge.pipeline.plan; "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'pyiqa', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
