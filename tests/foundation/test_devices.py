"""Devices are chosen inside each worker from the resources it was given, never on the driver."""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pairforge.config import load_config, parse_config
from pairforge.devices import resolve_device
from pairforge.pipeline.executors import pool_sizes
from pairforge.pipeline.runner import make_plan
from pairforge.stage import Placement

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cuda(monkeypatch):
    """Set what torch.cuda.is_available() answers in this process."""
    import torch

    state = {"available": False}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: state["available"])
    return state


class _FakeScorer:
    def __init__(self, rules, device, max_side, batch_size):
        self.device = device

    def load(self):
        pass


def test_a_stage_planned_without_cuda_chooses_cuda_in_a_gpu_worker(cuda, monkeypatch, tmp_path):
    import pairforge.stages.filters as sf

    monkeypatch.setattr(sf, "IQAScorer", _FakeScorer)
    cfg = parse_config({"filters": [{"kind": "iqa", "metrics": [{"name": "piqe", "threshold": 50}],
                                     "resources": {"num_gpus": 1}}]})
    plan = make_plan(cfg, None, limit=4)  # the driver: no CUDA
    iqa = next(s for s in plan.stages if s.name == "iqa")
    assert plan.context.device == "auto"  # the plan keeps the request, not the driver's answer
    shipped = pickle.dumps(iqa)
    cuda["available"] = True  # the worker: a GPU
    worker = pickle.loads(shipped)
    worker.open(Placement("ray", 1.0, 1.0))
    assert worker.device == "cuda" and worker.scorer.device == "cuda"
    # every sample it scores says where
    from pairforge.batch import new_batch
    from pairforge.sources.bundled import load_bundled_photo

    b = new_batch([0])
    b["hq"] = [load_bundled_photo("coffee")[:64, :64].copy()]
    monkeypatch.setattr(sf.IQAStage, "process", lambda self, batch: batch)
    assert worker(b)["meta"][0]["devices"] == {"iqa": "cuda"}


def test_a_ray_worker_given_no_gpu_answers_cpu_without_importing_torch():
    code = (
        "import sys; from pairforge.devices import resolve_device; from pairforge.stage import Placement; "
        "print(resolve_device('auto', Placement('ray', 1.0, 0.0)), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["cpu", "False"]


def test_auto_where_no_gpu_can_exist_answers_cpu_without_importing_torch():
    """Start-up (issue 14.1): ``auto`` asks torch only where a GPU may exist (driver, device node, visible
    devices); with every device hidden it answers cpu and torch stays unloaded."""
    import os

    code = "import sys; from pairforge.devices import resolve_device; print(resolve_device('auto'), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}).stdout
    assert out.split() == ["cpu", "False"]


def test_auto_asks_torch_once_it_is_loaded(cuda):
    # a process that already imported torch gets torch's answer (what the GPU-worker tests rely on)
    cuda["available"] = True
    assert resolve_device("auto") == "cuda"
    cuda["available"] = False
    assert resolve_device("auto") == "cpu"


def test_a_cpu_degradation_run_never_imports_torch(tmp_path):
    code = f"""
import sys
from pairforge.config import parse_config
from pairforge.pipeline.runner import run_pipeline
cfg = parse_config({{"source": {{"kind": "bundled", "photos": ["coffee"], "crop": {{"mode": "tiles", "size": 64, "stride": 200}}}},
                    "filters": [{{"kind": "sanity", "min_size": 32}}], "degrade": {{"kind": "realworld"}}}})
run_pipeline(cfg, {str(tmp_path / 'run')!r}, limit=3, executor="local")
print("torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == "False"


def test_explicit_devices(cuda):
    assert resolve_device("cpu", Placement("ray", 1.0, 1.0)) == "cpu"
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        resolve_device("cuda")
    cuda["available"] = True
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_device("auto", Placement("local", 1.0, 0.0)) == "cuda"  # the local executor sees the machine


def test_kuberay_head_has_no_gpu_and_synthesis_lands_on_the_gpu_workers(cuda, monkeypatch):
    """docker/kuberay-cluster.yaml with configs/flux-fluxgen.yaml: planned on the CPU-only head, the
    synthesis segment asks Ray for a GPU and chooses CUDA inside its worker; CPU segments stay on CPU."""
    spec = yaml.safe_load((ROOT / "docker" / "kuberay-cluster.yaml").read_text())
    head = spec["spec"]["headGroupSpec"]
    assert head["rayStartParams"].get("num-gpus") == "0"
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]
    gpus = sum(int(g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0)) * g["replicas"]
               for g in spec["spec"]["workerGroupSpecs"])
    assert gpus >= 1

    import pairforge.stages.filters as sf
    import pairforge.stages.synthesis as ss

    class FakeBackend:
        def __init__(self, model, generation, device):
            self.device = device

        def load(self):
            pass

    monkeypatch.setattr(ss, "DiffusionBackend", FakeBackend)
    monkeypatch.setattr(sf, "IQAScorer", _FakeScorer)
    cfg = load_config(str(ROOT / "configs" / "flux-fluxgen.yaml"), ["run.num_samples=8"])
    plan = make_plan(cfg, None)  # on the head: no CUDA
    for st in plan.stages:
        if st.name.startswith("iqa"):  # as the head's calibration pass leaves them
            st.thresholds = {m.name: 0.0 for m in st.config.metrics}
    segments = plan.segments()
    sizes = pool_sizes(segments, cpus=64.0, gpus=float(gpus))
    shipped = [(pickle.dumps(seg.stages), seg.num_gpus, ncpu) for seg, (ncpu, _) in zip(segments, sizes)]
    cuda["available"] = True  # inside the GPU workers (Ray hides GPUs from actors that asked for none)
    devices = {}
    for payload, ngpu, ncpu in shipped:
        for st in pickle.loads(payload):
            if st.name == "synthesis" or st.name.startswith("iqa"):
                st.open(Placement("ray", ncpu, ngpu))
                devices[st.name] = (st.device, ngpu)
    assert devices["synthesis"] == ("cuda", 1.0)
    assert all(dev == "cuda" and ngpu > 0 for dev, ngpu in devices.values()), devices
    assert resolve_device("auto", Placement("ray", 1.0, 0.0)) == "cpu"  # a CPU segment's worker
