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
from pairforge.llm.transformers_local import TransformersClient
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


def cfg(model_dir, retry=None, llm=None, **over):
    # short instructions: the tiny model's byte-level vocabulary makes every character a token
    return JudgeFilterConfig(
        llm={"provider": "transformers", "model": model_dir, "max_output_tokens": 16, "generate_batch_size": 2,
             "retry": {"max_attempts": 1, **(retry or {})}, **(llm or {})},
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
        assert rec["provider"] == "transformers" and rec["passed"] is None and rec["usage"]["input_tokens"] > 0
        assert 0 < rec["usage"]["output_tokens"] <= 16
    out = JudgeStage(cfg(tiny_qwen2vl, on_error="accept"), RunContext())(batch(1))
    assert out["reject"] == [None] and out["meta"][0]["filters"]["judge"]["unjudged"] is True


@pytest.mark.parametrize("answer,passed", [('{"passed": true, "reasons": []}', True), ('{"passed": false, "reasons": ["odd"], "categories": ["common_sense"]}', False)])
def test_verdict_is_parsed_under_forced_decoding(tiny_qwen2vl, answer, passed):
    settings = cfg(tiny_qwen2vl)
    probe = TransformersClient(settings.llm)
    probe.load(vision=True)
    tok = probe._proc.tokenizer
    ids = tok(answer, add_special_tokens=False)["input_ids"]
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    client = TransformersClient(
        settings.llm.model_copy(update={"max_output_tokens": len(ids) + 4}),
        generate_kwargs={"logits_processor": LogitsProcessorList([ForceText(ids, eos)])},
    )
    judge = Judge(settings, client)
    judge.setup()
    js = judge.judge_images([photo("coffee", 64), photo("rocket", 80)])
    for j in js:
        assert j.ok and j.verdict.passed is passed
        assert j.usage.output_tokens == len(ids) + 1  # the answer and EOS, nothing after
    if not passed:
        assert js[0].verdict.categories == ["common_sense"]


@pytest.mark.parametrize("retry_malformed,attempts", [(True, 3), (False, 1)])
def test_batched_local_path_retries_malformed_replies(tiny_qwen2vl, tmp_path, retry_malformed, attempts):
    from pairforge.io.storage import LocalStorage
    from pairforge.llm.usage import summarize_usage

    c = cfg(tiny_qwen2vl, retry={"max_attempts": 3, "retry_malformed": retry_malformed})
    out = JudgeStage(c, RunContext(run_url=str(tmp_path)))(batch(2))
    for r, m in zip(out["reject"], out["meta"]):
        assert r["value"] == "malformed"
        rec = m["filters"]["judge"]
        assert rec["attempts"] == attempts and rec["usage"]["requests"] == attempts
    total = summarize_usage(LocalStorage(tmp_path), "judge")
    assert (total["calls"], total["requests"], total["failed_calls"]) == (2, 2 * attempts, 2)


def _hub_cache(model_dir, root, repo="acme/tiny-vlm", commit="0123456789abcdef0123456789abcdef01234567"):
    """The layout `pairforge models pull --cache DIR` leaves: models--org--name/{refs/main, snapshots/<commit>}."""
    import shutil

    d = root / ("models--" + repo.replace("/", "--"))
    shutil.copytree(model_dir, d / "snapshots" / commit)
    (d / "refs").mkdir()
    (d / "refs" / "main").write_text(commit)
    return repo, commit


def test_local_judge_loads_a_pulled_model_from_cache_dir_offline(tiny_qwen2vl, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo, commit = _hub_cache(tiny_qwen2vl, tmp_path / "cache")
    for revision in (None, commit):
        c = cfg(repo, llm={"cache_dir": str(tmp_path / "cache"), "revision": revision})
        stage = JudgeStage(c, RunContext())
        out = stage(batch(1))
        assert out["meta"][0]["filters"]["judge"]["model"] == repo
        assert stage.judge.client._model is not None
        stage.teardown()  # closes the client and drops the weights
        assert stage.judge is None


def test_missing_local_judge_model_fails_at_setup_naming_models_pull(tmp_path):
    from pairforge.errors import ModelLoadError

    stage = JudgeStage(cfg("acme/not-pulled", llm={"cache_dir": str(tmp_path)}), RunContext())
    with pytest.raises(ModelLoadError, match="models pull"):
        stage.setup()


def test_default_num_gpus_of_a_local_judge():
    """One GPU per worker when the local judge will run on a GPU; none for CPU runs and remote providers."""
    local = cfg("/some/model")
    assert JudgeStage(local, RunContext(device="cuda")).resources.num_gpus == 1
    assert JudgeStage(local, RunContext(device="cpu")).resources.num_gpus == 0
    on_cpu = cfg("/some/model", llm={"device": "cpu"})
    assert JudgeStage(on_cpu, RunContext(device="cuda")).resources.num_gpus == 0
    pinned = cfg("/some/model", llm={"device": "cuda:1"})
    assert JudgeStage(pinned, RunContext(device="cpu")).resources.num_gpus == 1
    explicit = cfg("/some/model", resources={"num_gpus": 0.5, "batch_size": 4})
    assert JudgeStage(explicit, RunContext(device="cuda")).resources.num_gpus == 0.5
    remote = JudgeFilterConfig(llm={"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"})
    assert JudgeStage(remote, RunContext(device="cuda")).resources.num_gpus == 0
