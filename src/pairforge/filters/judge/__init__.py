"""MLLM judge: GenIR-style inspection of images through :mod:`pairforge.llm` (Gemini, an
OpenAI-compatible server or a local VLM)."""
from pairforge.filters.judge.judge import Judge, Judgement, encode_image, make_judge
from pairforge.filters.judge.verdict import Verdict, build_instructions, parse_verdict

__all__ = ["Judge", "Judgement", "Verdict", "build_instructions", "encode_image", "make_judge", "parse_verdict"]
