"""Units of the pipeline: commit protocol edge cases, pool sizing, segments, seeding."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pairforge.config import parse_config
from pairforge.io.storage import LocalStorage
from pairforge.pipeline import ledger
from pairforge.pipeline.executors import pool_sizes
from pairforge.pipeline.plan import PlanError, Segment
from pairforge.pipeline.runner import make_plan, run_pipeline
from pairforge.seeding import sample_rng, sample_seed

CFG = {"source": {"kind": "bundled", "photos": ["chelsea"], "crop": {"mode": "tiles", "size": 64}}, "output": {"samples_per_shard": 3}}


def test_kill_between_tar_and_record_leaves_nothing_visible_after_resume(tmp_path):
    """Simulate every moment of a crash: a temp tar, an orphan tar without record, a stale record."""
    cfg = parse_config(CFG)
    out = tmp_path / "o"
    run_pipeline(cfg, str(out), executor="local", limit=9)
    def state():
        out_ = {}
        for p in (out / "shards").iterdir():
            if p.suffix == ".json":
                rec = json.loads(p.read_text())
                rec.pop("stage_seconds"), rec.pop("write_seconds")  # timings differ run to run
                out_[p.name] = rec
            else:
                out_[p.name] = p.read_bytes()
        return out_

    clean = state()
    sh = out / "shards"
    (sh / "shard-000000.tar.tmp-deadbeef").write_bytes(b"half a tar")  # killed while writing
    (sh / "shard-000001.json").unlink()  # killed after the rename, before the record
    (sh / "shard-000002.tar").unlink()  # record without its tar (e.g. a lost upload)
    (sh / "shard-000007.tar").write_bytes(b"stray shard outside the plan")
    s = run_pipeline(cfg, str(out), executor="local", limit=9)
    assert s.shards_skipped == 1 and s.shards_written == 2
    assert state() == clean
    assert sorted(s.removed) == ["shards/shard-000000.tar.tmp-deadbeef", "shards/shard-000007.tar"]


def test_unreadable_record_counts_as_uncommitted(tmp_path):
    out = tmp_path / "o"
    run_pipeline(parse_config(CFG), str(out), executor="local", limit=3)
    (out / "shards/shard-000000.json").write_text("{not json")
    assert ledger.committed_records(LocalStorage(out)) == {}


def test_shards_cover_indices_exactly():
    plan = make_plan(parse_config(CFG), None, limit=10)
    spans = [(s.start, s.end) for s in plan.shards()]
    assert spans == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_cpu_stages_fuse_and_gpu_stages_split():
    cfg = parse_config({**CFG, "filters": [{"kind": "sanity"}, {"kind": "iqa", "metrics": [{"name": "piqe"}], "resources": {"num_gpus": 1}}]})
    segs = make_plan(cfg, None).segments()
    assert [s.names for s in segs] == [["source", "sanity"], ["iqa"], ["degrade", "writer"]]


@pytest.mark.parametrize("cpus", [1, 2, 3, 16])
def test_pool_sizes_never_reserve_more_cpus_than_exist(cpus):
    segs = [Segment([], 1.0, 0.0, None), Segment([], 1.0, 1.0, None), Segment([], 2.0, 0.0, None, with_writer=True)]
    sizes = pool_sizes(segs, float(cpus), 1.0)
    cpu_total = sum(per * n for (per, n), s in zip(sizes, segs))
    assert cpu_total <= max(cpus, 1.5) + 1e-9
    assert all(n >= 1 for _per, n in sizes)


def test_gpu_stage_on_a_cluster_without_gpus_is_a_clear_error():
    with pytest.raises(PlanError, match="has no GPU"):
        pool_sizes([Segment([], 1.0, 1.0, None)], 2.0, 0.0)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31), index=st.integers(0, 10**9))
def test_sample_seeds_depend_only_on_seed_index_stage(seed, index):
    a = sample_seed(seed, index, "degrade")
    assert a == sample_seed(seed, index, "degrade")
    assert 0 <= a < 2**63
    assert a != sample_seed(seed, index, "source")
    assert np.array_equal(sample_rng(seed, index, "x").random(4), sample_rng(seed, index, "x").random(4))


def test_run_json_records_config_and_versions(tmp_path):
    out = tmp_path / "o"
    run_pipeline(parse_config(CFG), str(out), executor="local", limit=3)
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["run"]["num_samples"] == 3
    assert {"python", "numpy", "pairforge"} <= set(run["versions"])
    assert run["plan"]["segments"][0]["stages"][-1] == "writer"


def test_missing_iqa_weights_fail_clearly_and_nothing_downloads(tmp_path, monkeypatch):
    import pyiqa.utils.download_util as du

    from pairforge.filters.iqa import MissingWeightsError, load_metric

    original = du.download_url_to_file
    with pytest.raises(MissingWeightsError, match="pairforge models pull") as e:
        load_metric("musiq")
    assert ".pth" in str(e.value)
    assert du.download_url_to_file is original  # the guard is lifted afterwards


def test_worker_errors_reach_the_user_as_their_own_type():
    import pickle

    from ray.exceptions import RayTaskError

    from pairforge.filters.iqa import MissingWeightsError
    from pairforge.pipeline.executors import user_error_from_worker

    cause = pickle.loads(pickle.dumps(MissingWeightsError("IQA metric 'musiq' needs the file x.pth")))
    wrapped = RayTaskError("MapWorker", "Traceback (most recent call last): ...", cause).as_instanceof_cause()
    outer = RuntimeError("Ray Data failed")
    outer.__cause__ = wrapped
    err = user_error_from_worker(outer)
    assert type(err) is MissingWeightsError and str(err) == "IQA metric 'musiq' needs the file x.pth"
    assert user_error_from_worker(RuntimeError("MissingWeightsError: as text only")) is None
    from pairforge.pipeline.plan import PlanError
    from pairforge.synthesis.models import MissingModelError

    for cls in (MissingModelError, PlanError):  # every user-facing error survives the trip from a worker
        again = pickle.loads(pickle.dumps(cls("one line")))
        assert type(again) is cls and str(again) == "one line"
