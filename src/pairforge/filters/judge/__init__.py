"""MLLM judge: GenIR-style inspection of images with Gemini, an OpenAI-compatible server or a local VLM."""
from pairforge.filters.judge.base import Judge, JudgeBackend, Judgement, make_backend
from pairforge.filters.judge.usage import Usage, summarize_usage
from pairforge.filters.judge.verdict import (
    Verdict,
    VerdictError,
    build_instructions,
    parse_verdict,
)

__all__ = [
    "Judge",
    "JudgeBackend",
    "Judgement",
    "Usage",
    "Verdict",
    "VerdictError",
    "build_instructions",
    "make_backend",
    "parse_verdict",
    "summarize_usage",
]
