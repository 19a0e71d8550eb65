"""The local transformers judge with a tiny, randomly initialised Qwen2-VL built in code and loaded
through the real AutoProcessor / AutoModelForImageTextToText.from_pretrained path.

Random weights produce random text, so the honest end-to-end claim is: unparseable output is handled by
the failure policy (never a pass). That a well-formed answer is parsed is shown with forced decoding: a
real logits processor inside the real ``generate`` makes the model emit a given JSON token sequence."""
import pytest
import torch
from conftest import photo
from transformers import LogitsProcessor, LogitsProcessorList

from pairforge.batch import new_batch
from pairforge.filters.config import JudgeFilterConfig
from pairforge.filters.judge import Judge
from pairforge.filters.judge.local_vlm import LocalVLMBackend
from pairforge.stage import RunContext
from pairforge.stages.filters import JudgeStage


class ForceText(LogitsProcessor):
    """Forces the continuation to be exactly ``token_ids`` (then EOS), from the first generated step."""

    def __init__(self, token_ids: list[int], eos: int):
        self.ids = token_ids + [eos]
        self.start = None

    def __call__(self, input_ids, scores):
        if self.start is None or input_ids.shape[1] < self.start:
            self.start = input_ids.shape[1]
        k = min(input_ids.shape[1] - self.start, len(self.ids) - 1)
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.ids[k]] = 0.0
        return forced


def cfg(model_dir, **over):
    # short instructions: the tiny model's byte-level vocabulary makes every character a token
    return JudgeFilterConfig(
        backend={"type": "local", "model": model_dir, "max_new_tokens": 16, "generate_batch_size": 2},
        instructions="Check the image.",
        **over,
    )


def batch(n):
    b = new_batch(list(range(n)))
    b["hq"] = [photo(x, 64) for x in ["coffee", "rocket", "chelsea"]][:n]
    return b


def test_random_weights_output_is_unparseable_and_the_failure_policy_rejects(tiny_qwen2vl):
    out = JudgeStage(cfg(tiny_qwen2vl), RunContext())(batch(3))
    for r, m in zip(out["reject"], out["meta"]):
        assert (r["stage"], r["rule"], r["value"]) == ("judge", "judge_error", "malformed")
        rec = m["filters"]["judge"]
        assert rec["backend"] == "local" and rec["passed"] is None and rec["usage"]["input_tokens"] > 0
        assert 0 < rec["usage"]["output_tokens"] <= 16
    out = JudgeStage(cfg(tiny_qwen2vl, on_error="accept"), RunContext())(batch(1))
    assert out["reject"] == [None] and out["meta"][0]["filters"]["judge"]["unjudged"] is True


@pytest.mark.parametrize("answer,passed", [('{"passed": true, "reasons": []}', True), ('{"passed": false, "reasons": ["odd"], "categories": ["common_sense"]}', False)])
def test_verdict_is_parsed_under_forced_decoding(tiny_qwen2vl, answer, passed):
    settings = cfg(tiny_qwen2vl)
    probe = LocalVLMBackend(settings.backend)
    probe.setup()
    tok = probe._processor.tokenizer
    ids = tok(answer, add_special_tokens=False)["input_ids"]
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    backend = LocalVLMBackend(
        settings.backend.model_copy(update={"max_new_tokens": len(ids) + 4}),
        generate_kwargs={"logits_processor": LogitsProcessorList([ForceText(ids, eos)])},
    )
    judge = Judge(settings, backend)
    judge.setup()
    js = judge.judge_images([photo("coffee", 64), photo("rocket", 80)])
    for j in js:
        assert j.ok and j.verdict.passed is passed
        assert j.usage.output_tokens == len(ids) + 1  # the answer and EOS, nothing after
    if not passed:
        assert js[0].verdict.categories == ["common_sense"]
