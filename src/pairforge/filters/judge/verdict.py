"""What the MLLM judge is asked and what it must answer: the instructions and the verdict schema.

The instructions follow GenIR's published image screen (anomalies, irregularities, content against common
sense, NSFW, privacy violations; answer passed yes/no with reasons). Every reply, from every backend, is
validated against :class:`Verdict`; a reply that does not validate is *malformed*, never a pass.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from pairforge.llm.replies import parse_json_reply

Category = Literal["anomalies", "common_sense", "unsafe", "privacy", "other"]

CHECK_TEXT = {
    "anomalies": "anomalies or irregularities: deformed or duplicated body parts, malformed objects, garbled text, "
    "visible generation artifacts",
    "common_sense": "content against common sense: physically impossible scenes, wrong proportions, objects merging "
    "into each other",
    "unsafe": "unsafe content: nudity or sexual content, gore, violence, hate symbols",
    "privacy": "privacy violations: an identifiable real person's face, a readable license plate, documents, "
    "screens or any other personal data",
}


class Score(BaseModel):
    name: str
    value: float


class Verdict(BaseModel):
    """The structured answer of the judge about one image."""

    passed: bool = Field(..., description="true if the image shows none of the listed problems")
    reasons: list[str] = Field(default_factory=list, description="short reasons, especially when failed")
    categories: list[Category] = Field(default_factory=list, description="the checks that failed")
    scores: list[Score] = Field(default_factory=list, description="optional named scores, e.g. quality 0-10")


def build_instructions(checks: list[str], custom: str | None = None) -> str:
    """The text sent with every image."""
    if custom:
        body = custom.strip()
    else:
        lines = [f"- {c}: {CHECK_TEXT[c]}" for c in checks]
        body = (
            "You inspect images for a dataset of clean photographs used to train image-restoration models. "
            "Look at the image carefully and decide whether it passes. It FAILS if it shows any of:\n"
            + "\n".join(lines)
        )
    names = ", ".join(f'"{c}"' for c in checks)
    return (
        f"{body}\n\nAnswer ONLY with one JSON object, no other text: "
        '{"passed": true or false, "reasons": ["short reason", ...], '
        f'"categories": [names of the failed checks, from {names} or "other"], '
        '"scores": [{"name": "quality", "value": 0-10}]}'
    )


def parse_verdict(text: str | None) -> Verdict:
    """Parse and validate a reply (code fences and prose around one JSON object are tolerated);
    raises :class:`~pairforge.llm.errors.MalformedReply`."""
    return parse_json_reply(text, Verdict)
