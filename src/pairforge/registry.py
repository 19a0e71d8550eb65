"""Registries: the one place that maps a config ``kind`` to its config class and its implementation.

Why: without them, a new filter or degradation type had to be listed by hand in several modules (the
config union, the plan builder, the stage table, the type table). Now a component lives in its own
module, its config class carries one decorator naming its implementation, and the pydantic
discriminated unions and the plan builder read the registries.

Implementations are named by lazy ``"module:attr"`` paths, so importing the config (on the driver, in
``pairforge validate``) never imports torch, diffusers or a model library: the implementation module
is imported only when a stage is actually built. A registry also names the modules that hold its
config classes (``modules``); they are imported on first use, so adding a component module means
adding its path there, the one registration line outside the module itself::

    # pairforge/filters/blurry.py
    @FILTERS.register(stage="pairforge.filters.blurry:BlurryStage")
    class BlurryFilterConfig(StrictModel):
        kind: Literal["blurry"] = "blurry"
        ...

    # pairforge/registry.py
    FILTERS = Registry("filter", modules=(..., "pairforge.filters.blurry"))
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, Union

from pydantic import Field

T = TypeVar("T")


def import_path(path: str) -> Any:
    """The object a ``"package.module:attr"`` path names (imported now)."""
    module, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"import path {path!r} must look like 'package.module:attr'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class Entry:
    """One registered kind: its config class and the lazy paths of what implements it."""

    kind: str
    config: type | None
    impls: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def load(self, role: str) -> Any:
        """Import and return the implementation registered under ``role`` (e.g. ``stage``)."""
        try:
            path = self.impls[role]
        except KeyError:
            raise KeyError(f"{self.kind!r} registers no {role!r} (it has: {', '.join(self.impls) or 'none'})") from None
        return import_path(path)


class Registry:
    """Kinds of one family of components (filters, sources, degraders, ...), in registration order.

    ``discriminator`` is the config field holding the kind (``kind`` everywhere but where a config
    file already says otherwise); ``modules`` are imported before the registry is read, so that the
    decorators in them have run.
    """

    def __init__(self, what: str, discriminator: str | None = "kind", modules: tuple[str, ...] = ()):
        self.what = what
        self.discriminator = discriminator
        self.modules = list(modules)
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def register(self, kind: str | None = None, **impls_and_options: Any) -> Callable[[type[T]], type[T]]:
        """Class decorator for a config class. ``kind`` defaults to the default of the class's
        discriminator field; string keyword values that contain ``:`` are lazy implementation paths,
        anything else is kept as an option (e.g. a rank)."""

        def deco(cls: type[T]) -> type[T]:
            self.add(kind if kind is not None else _default_kind(cls, self.discriminator), cls, **impls_and_options)
            return cls

        return deco

    def add(self, kind: str, config: type | None = None, **impls_and_options: Any) -> None:
        """Register ``kind`` without a decorator (a kind whose config is not a class of its own, such as
        a diffusion family, or a config class built at run time)."""
        old = self._entries.get(kind)
        if old is not None and old.config is not config:
            raise ValueError(f"{self.what} {kind!r} is registered twice")
        impls = {r: v for r, v in impls_and_options.items() if isinstance(v, str) and ":" in v}
        options = {r: v for r, v in impls_and_options.items() if r not in impls}
        self._entries[kind] = Entry(kind, config, impls, options)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for m in self.modules:
                importlib.import_module(m)

    def entries(self) -> list[Entry]:
        self._load()
        return list(self._entries.values())

    def kinds(self) -> list[str]:
        return [e.kind for e in self.entries()]

    def get(self, kind: str) -> Entry:
        self._load()
        try:
            return self._entries[kind]
        except KeyError:
            raise KeyError(f"unknown {self.what} {kind!r}; allowed: {', '.join(self.kinds())}") from None

    def entry_for(self, config: Any) -> Entry:
        """The entry of a config object (by its discriminator value)."""
        if self.discriminator is None:
            raise TypeError(f"{self.what} configs carry no discriminator; look entries up by kind")
        return self.get(getattr(config, self.discriminator))

    def union(self) -> Any:
        """The pydantic discriminated union of every registered config class."""
        if self.discriminator is None:
            raise TypeError(f"{self.what} configs carry no discriminator: there is no union of them")
        classes = tuple(e.config for e in self.entries())
        if len(classes) == 1:
            return classes[0]
        return Annotated[Union[classes], Field(discriminator=self.discriminator)]  # noqa: UP007


def _default_kind(cls: type, discriminator: str | None) -> str:
    if discriminator is None:
        raise TypeError(f"{cls.__name__}: pass the kind to register()")
    fields = getattr(cls, "model_fields", {})
    f = fields.get(discriminator)
    if f is None or not isinstance(f.default, str):
        raise TypeError(f"{cls.__name__} has no default {discriminator!r}: pass the kind to register()")
    return f.default


#: pipeline sources: ``stages`` builds the source's stages (config, context) -> list[Stage]
SOURCES = Registry("source", modules=("pairforge.sources.config", "pairforge.synthesis.config"))
#: filters: ``stage`` is the Stage class built from (config, context)
FILTERS = Registry("filter", modules=("pairforge.filters.config",))
#: the ``degrade:`` section: ``degrader`` is the Degrader class built from its config; options:
#: ``thread_safe=True`` when its ``degrade`` may run on different images in threads of one process,
#: ``max_pixels`` the default per-image limit of the degrade stage (about 4 GB per worker)
DEGRADERS = Registry(
    "degrade",
    modules=(
        "pairforge.degradations.simple",
        "pairforge.degradations.chain.config",
        "pairforge.degradations.realworld.degrader",
        "pairforge.degradations.mix",
    ),
)
#: real-world degradation types (their TypeConfig classes), in the reference's listing order; ``type`` is
#: the RealWorldType class and the option ``rank`` the physical application order when stacked
REALWORLD_TYPES = Registry(
    "real-world type",
    discriminator=None,
    modules=tuple(
        f"pairforge.degradations.realworld.{m}"
        for m in ("blur", "compression", "moire", "lowlight", "noise", "flare", "reflection", "haze", "rain")
    ),
)
#: diffusion model families of the synthesis source: ``family`` is the DiffusionFamily object
DIFFUSION_FAMILIES = Registry("diffusion family", discriminator="family", modules=("pairforge.synthesis.config",))
