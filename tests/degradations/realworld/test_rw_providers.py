"""Depth and segment providers: the transformers paths with tiny models built in code (plumbing
only: random weights, saved with save_pretrained and loaded back offline), and the weight-free ones."""
from __future__ import annotations

import numpy as np
import pytest

from pairforge.degradations.realworld import RealWorldDegradeConfig
from pairforge.degradations.realworld.depth import DepthConfig
from pairforge.degradations.realworld.segments import (
    SegmentsConfig,
    classical_segments,
    masks_to_labels,
)


@pytest.fixture(scope="module")
def tiny_dpt(tmp_path_factory):
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    path = tmp_path_factory.mktemp("dpt")
    cfg = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37,
                    image_size=32, patch_size=8, backbone_out_indices=[0, 1, 2, 3],
                    neck_hidden_sizes=[16, 16, 16, 16], fusion_hidden_size=16,
                    reassemble_factors=[4, 2, 1, 0.5], head_in_index=-1)
    DPTForDepthEstimation(cfg).save_pretrained(path)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory):
    from transformers import (
        SamConfig,
        SamImageProcessor,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    path = tmp_path_factory.mktemp("sam")
    vc = SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64, patch_size=8,
                         output_channels=16, mlp_dim=32, global_attn_indexes=[1], window_size=4, num_pos_feats=8)
    pc = SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4)
    mc = SamMaskDecoderConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, mlp_dim=32,
                              iou_head_hidden_dim=16)
    SamModel(SamConfig(vision_config=vc, prompt_encoder_config=pc, mask_decoder_config=mc)).save_pretrained(path)
    SamProcessor(image_processor=SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})
                 ).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_sam2(tmp_path_factory):
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2MaskDecoderConfig,
        Sam2Model,
        Sam2Processor,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    path = tmp_path_factory.mktemp("sam2")
    bb = Sam2HieraDetConfig(hidden_size=8, num_attention_heads=1, blocks_per_stage=[1, 2, 2, 1],
                            embed_dim_per_stage=[8, 16, 32, 64], num_attention_heads_per_stage=[1, 1, 1, 1],
                            global_attention_blocks=[2], window_size_per_stage=[4, 4, 4, 2],
                            window_positional_embedding_background_size=[2, 2], image_size=[64, 64])
    vc = Sam2VisionConfig(backbone_config=bb, backbone_channel_list=[64, 32, 16, 8],
                          backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]], fpn_hidden_size=32)
    pc = Sam2PromptEncoderConfig(hidden_size=32, image_size=64, patch_size=16, mask_input_channels=4)
    mc = Sam2MaskDecoderConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_dim=32,
                               iou_head_hidden_dim=16)
    Sam2Model(Sam2Config(vision_config=vc, prompt_encoder_config=pc, mask_decoder_config=mc)).save_pretrained(path)
    Sam2Processor(image_processor=Sam2ImageProcessor(size={"height": 64, "width": 64})).save_pretrained(path)
    return str(path)


def test_transformers_depth_provider_loads_offline_and_maps_to_unit_depth(tiny_dpt, small_photo):
    prov = DepthConfig(model=tiny_dpt, device="cpu").build()
    d = prov(small_photo[:50])  # non-square, not the model's size
    assert d.shape == (50, 64) and d.dtype == np.float32
    assert 0.0 <= d.min() and d.max() <= 1.0 and np.isfinite(d).all()
    assert np.array_equal(d, prov(small_photo[:50]))
    assert prov.source == f"transformers:{tiny_dpt}"
    # "depth" output is the flip of "disparity" (1 = far in both conventions' results)
    d2 = DepthConfig(model=tiny_dpt, device="cpu", output="depth").build()(small_photo[:50])
    assert np.allclose(d + d2, 1.0, atol=1e-5)


def test_degrader_records_the_depth_model(tiny_dpt, photos):
    cfg = RealWorldDegradeConfig(weights={"haze": 1.0}, depth={"model": tiny_dpt, "device": "cpu"})
    res = cfg.build().degrade([photos[0]], [3], [{}])[0]
    assert res.params["depth_source"] == f"transformers:{tiny_dpt}"
    assert res.lq.shape == photos[0].shape


@pytest.mark.parametrize("which", ["sam", "sam2"])
def test_sam_family_segments_provider(which, tiny_sam, tiny_sam2, small_photo):
    path = tiny_sam if which == "sam" else tiny_sam2
    prov = SegmentsConfig(model=path, points_per_side=3, min_iou=0.0, device="cpu").build()
    labels = prov(small_photo[:48])
    assert labels.shape == (48, 64) and labels.dtype == np.int32
    assert labels.min() == 0 and np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    assert prov.source == f"transformers:{path}"
    cfg = RealWorldDegradeConfig(weights={"blur": 1.0}, blur={"modes": {"object": 1.0}},
                                 segments={"model": path, "points_per_side": 2, "min_iou": 0.0, "device": "cpu"})
    res = cfg.build().degrade([small_photo], [1], [{}])[0]
    assert res.params["segments_source"] == f"transformers:{path}"  # the subject is picked among its masks
    assert res.params["scene"]["subject_source"] == "model-masks"
    # a batch runs the segmenter once for all its images
    prov = SegmentsConfig(model=path, points_per_side=2, min_iou=0.0, device="cpu", batch_size=4).build()
    maps = prov.batch([small_photo, small_photo[:48]])
    assert [m.shape for m in maps] == [(64, 64), (48, 64)]


def test_missing_or_wrong_models_are_clear_errors(tmp_path, small_photo, tiny_dpt):
    with pytest.raises(RuntimeError, match="models pull"):
        DepthConfig(model=str(tmp_path / "nope")).build()(small_photo)
    with pytest.raises(RuntimeError, match="offline"):
        SegmentsConfig(model=str(tmp_path / "nope")).build()(small_photo)
    with pytest.raises(ValueError, match="SAM-family"):
        SegmentsConfig(model=tiny_dpt).build()(small_photo)


def test_masks_to_labels_prefers_small_masks_and_drops_duplicates():
    big = np.zeros((2, 1, 20, 20), bool)
    big[0, 0] = True
    big[1, 0, 5:10, 5:10] = True
    labels = masks_to_labels(big, np.array([[0.9], [0.9]]), 0.5)
    assert set(np.unique(labels)) == {0, 1} and (labels[5:10, 5:10] != labels[0, 0]).all()
    dup = np.concatenate([big[:1], big[:1]])
    assert np.unique(masks_to_labels(dup, np.array([[0.9], [0.9]]), 0.5)).size == 1
    assert np.unique(masks_to_labels(big, np.array([[0.1], [0.1]]), 0.5)).size == 1  # low IoU dropped


def test_classical_segments_follow_the_requested_count(photos):
    for method in ("merge", "felzenszwalb", "slic"):
        for n in (4, 8, 12, 24):
            lab = classical_segments(photos[0], method, n)
            assert lab.shape == photos[0].shape[:2] and lab.max() + 1 == n, (method, n, lab.max() + 1)
            assert np.array_equal(np.unique(lab), np.arange(n))


def test_configured_models_are_declared_for_models_pull():
    assert RealWorldDegradeConfig().hub_models() == []
    cfg = RealWorldDegradeConfig(depth={"model": "Intel/dpt-large", "revision": "abc"},
                                 segments={"model": "facebook/sam-vit-base"})
    assert cfg.hub_models() == [("Intel/dpt-large", "abc"), ("facebook/sam-vit-base", None)]


def test_ready_models_config_declares_both_networks_for_models_pull():
    from pathlib import Path

    from pairforge.config import load_config
    from pairforge.synthesis.models import models_pull

    path = Path(__file__).resolve().parents[3] / "configs" / "degradations" / "realworld-models.yaml"
    cfg = load_config(path)
    assert cfg.degrade.kind == "realworld" and cfg.degrade.resources.num_gpus == 1
    recs = models_pull(cfg, "/nonexistent-cache", dry_run=True)
    assert [(r["id"], r["status"]) for r in recs] == [
        ("depth-anything/Depth-Anything-V2-Small-hf", "planned"), ("facebook/sam-vit-base", "planned")]


def test_depth_runs_once_per_batch_on_the_samples_that_need_it(tiny_dpt, photos):
    cfg = RealWorldDegradeConfig(weights={"haze": 1.0, "compression": 1.0}, stack={"probability": 0.0},
                                 depth={"model": tiny_dpt, "device": "cpu", "batch_size": 8})
    d = cfg.build()
    calls = []
    forward = d.depth_provider.batch

    def counting(images):
        calls.append(len(images))
        return forward(images)

    d.depth_provider.batch = counting
    seeds = list(range(12))
    res = d.degrade([photos[i % 3] for i in seeds], seeds, [{} for _ in seeds])
    hazy = [r for r in res if "haze" in r.params["types"]]
    assert hazy and len(calls) == 1 and calls[0] == len(hazy)  # one pass, only the samples with haze
    for r in hazy:
        assert r.params["depth_source"] == f"transformers:{tiny_dpt}" and r.params["scene"]["depth_form"] == "model"
    # batching changes nothing: the same sample alone gives the same pixels
    one = cfg.build().degrade([photos[0]], [0], [{}])[0]
    assert np.array_equal(one.lq, res[0].lq)
