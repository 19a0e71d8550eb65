"""Privacy rules and exact/near-duplicate removal (the real offline MiniLM model)."""
from __future__ import annotations

import pytest

from pairforge.prompts.config import DedupConfig, PrivacyConfig
from pairforge.prompts.dedup import Deduplicator, normalize_prompt
from pairforge.prompts.privacy import PrivacyScreen

BAD = {
    "email": "a desk with a note reading jane.doe@mail.com",
    "url": "a billboard advertising www.example.org",
    "digit_sequence": "a phone booth, call +1 415 555 0134 now",
    "named_person": "portrait of Emma Watson in a garden",
    "honorific_name": "Dr. Miller standing in the clinic",
    "street_address": "the front door of 221 Baker Street in fog",
    "identity": "a famous actor on the red carpet",
    "sensitive_data": "a passport lying on a hotel bed",
    "nsfw": "a naked figure on the beach",
}
GOOD = [
    "a red fox in fresh snow at dawn, 85mm lens",
    "an old stone bridge over a misty river, golden hour",
    "a street market in Marrakech with spice stalls, wide angle",
    "a lighthouse on the Atlantic coast at dusk",
    "a crowd of anonymous commuters on a train platform, motion blur",
    "a bowl of 12 lemons on a wooden table",
]


def test_rules_catch_identities_and_sensitive_content():
    s = PrivacyScreen(PrivacyConfig())
    for rule, prompt in BAD.items():
        v = s.check_rules(prompt)
        assert not v.passed and v.rule == rule, (prompt, v)
        assert v.reason
    for prompt in GOOD:
        assert s.check_rules(prompt).passed, prompt


def test_custom_and_allowed_terms():
    s = PrivacyScreen(PrivacyConfig(blocked_terms=["brand logo"], allowed_terms=["selfie"]))
    assert not s.check_rules("a shop window with a brand logo").passed
    assert s.check_rules("a selfie stick leaning on a wall").passed
    assert PrivacyScreen(PrivacyConfig(enabled=False)).screen(list(BAD.values()))[0].passed


def test_exact_duplicates_fold_case_and_punctuation():
    d = Deduplicator(DedupConfig(near=False))
    out = d.filter(["A red barn, in snow!", "a red barn in snow", "a blue barn in snow"])
    assert [k for k, _, _ in out] == [True, False, True]
    assert d.filter(["a RED barn in   snow"])[0][1] == "exact_duplicate"  # remembered across calls
    assert normalize_prompt("Café  au-lait!") == "cafe au lait"


@pytest.fixture(scope="module")
def near_dedup():
    return Deduplicator(DedupConfig(near=True, threshold=0.85))


def test_near_duplicates_with_offline_minilm(near_dedup):
    prompts = [
        "a red car parked on a city street at night",
        "a red automobile parked on a street in the city at night",
        "a bowl of ripe peaches on a kitchen table",
        "a snowy mountain peak under a clear blue sky",
        "a red car is parked on a street in a city at night",
    ]
    out = near_dedup.filter(prompts)
    assert [k for k, _, _ in out] == [True, False, True, True, False]
    assert out[1][1] == "near_duplicate" and out[1][2] >= 0.85
    later = near_dedup.filter(["ripe peaches in a bowl on the kitchen table", "a lighthouse in a storm"])
    assert [k for k, _, _ in later] == [False, True]
