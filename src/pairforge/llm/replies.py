"""The one reply parser: a reply text -> a validated pydantic object, or :class:`MalformedReply`.

Never trust a server to have enforced the schema (vLLM >= 0.12 ignores unknown guided-decoding
parameters and answers 200 with free text; local models wrap JSON in prose or code fences): the whole
text is tried first, then the text inside a code fence, then the outermost ``{...}``.
"""
from __future__ import annotations

import json
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from pairforge.llm.errors import MalformedReply

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def _candidates(text: str) -> list[str]:
    s = text.strip()
    out = [s]
    unfenced = _FENCE.sub("", s)
    if unfenced != s:
        out.append(unfenced)
    a, b = s.find("{"), s.rfind("}")
    if a != -1 and b > a and s[a:b + 1] not in out:
        out.append(s[a:b + 1])
    return out


def parse_json_reply(text: str | None, schema: type[T]) -> T:
    """``text`` validated as ``schema``; raises :class:`MalformedReply` naming what is wrong."""
    if text is None or not str(text).strip():
        raise MalformedReply("empty reply", kind="empty")
    first: Exception | None = None
    for c in _candidates(str(text)):
        try:
            data = json.loads(c)
        except ValueError as e:
            first = first or e
            continue
        if not isinstance(data, dict):
            first = first or ValueError(f"expected a JSON object, got {type(data).__name__}")
            continue
        try:
            return schema.model_validate(data)
        except ValidationError as e:
            first = e if first is None or not isinstance(first, ValidationError) else first
    if isinstance(first, ValidationError):
        errs = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in first.errors()[:3])
        why = f"reply does not match the {schema.__name__} schema ({errs})"
    else:
        why = f"reply is not JSON for the {schema.__name__} schema ({str(first).splitlines()[0][:160]})"
    snippet = str(text).strip()[:120].replace("\n", " ")
    raise MalformedReply(f"malformed reply: {why}: {snippet!r}")
