"""What the LLM is asked, and the JSON shapes it must answer in (validated with pydantic).

The scene-writing rules follow GenIR: varied, concrete photographic scenes, and nothing that identifies a
person or carries personal, sensitive or NSFW content. The privacy check mirrors GenIR's prompt filter:
one yes/no verdict with a reason per prompt.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ScenePromptBatch(BaseModel):
    """The reply to one scene-writing request."""

    model_config = ConfigDict(extra="forbid")
    prompts: list[str] = Field(..., min_length=1, max_length=400)


class PromptVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    passed: bool
    reason: str


class PrivacyVerdicts(BaseModel):
    """The reply to one privacy-check request: a verdict per numbered prompt."""

    model_config = ConfigDict(extra="forbid")
    results: list[PromptVerdict]


SCENE_SYSTEM = """You write prompts for a text-to-image model that generates a training set of \
high-quality, realistic photographs for image restoration research.

Rules for every prompt:
- Describe one concrete photographic scene: the main subject, the setting, the light, the time of day or \
weather, and the camera viewpoint or lens. Use 15 to 45 words, plain English, no lists.
- Photographs only: no paintings, drawings, renders, cartoons, collages or visible text, logos, watermarks.
- Never name or describe a real, famous or identifiable person; no celebrities, politicians or public \
figures; no names of private individuals. People may appear only as anonymous, distant or incidental \
figures, never as the identifiable subject.
- No personal or sensitive information: no addresses, phone numbers, e-mail addresses, licence plates, \
ID documents, screens, medical, financial or legal records, religious or political affiliation of a person.
- No nudity, sexual content, violence, gore, weapons used against people, drugs, hate symbols or anything \
unsafe for work.
- Every prompt must differ from the others in subject, setting and composition; avoid clichés and \
repeated openings.
Answer only with JSON of the form {"prompts": ["...", "..."]}."""


def scene_request(n: int, theme: str, extra: str = "", request_index: int = 0) -> str:
    """The user message of scene-writing request number ``request_index``."""
    parts = [
        f"Write {n} different photographic scene descriptions on the theme: {theme}.",
        f"(Request {request_index}: make these unlike any you would write for another request.)",
    ]
    if extra.strip():
        parts.append(extra.strip())
    return "\n".join(parts)


PRIVACY_SYSTEM = """You screen text-to-image prompts before they are used to build a public image \
dataset. For each numbered prompt decide whether it passes. A prompt FAILS if it names or describes a \
real or identifiable person (celebrity, public figure, private individual), contains personal or \
sensitive information (addresses, phone numbers, e-mail, licence plates, documents, health, finances, \
religion or politics of a person), or asks for nudity, sexual, violent, hateful or otherwise NSFW \
content. Otherwise it passes. Answer only with JSON {"results": [{"id": <number>, "passed": true|false, \
"reason": "<short reason>"}]} with one entry per prompt."""


def privacy_request(prompts: list[str]) -> str:
    lines = [f"{i}: {p}" for i, p in enumerate(prompts)]
    return "Prompts to screen:\n" + "\n".join(lines)
