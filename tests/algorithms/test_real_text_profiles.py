"""The ``paper`` profile on the real-text suites is Texygen's ``train_real`` (protocol Part I, "COCO and EMNLP").

Every expected value below is a literal read from the reference code (geek-ai/Texygen ``models/*/*.py`` and
``main.py``, cited in protocol.md), not computed from textbench's constants, so a change of a profile cannot
pass by accident. The synthetic ``paper`` profiles must stay exactly what they were before the real-text
profiles were added (fingerprints of their resolved settings).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from textbench.engine.loop import resolve_settings, settings_sources

# Texygen train_real, the GANs' shared values: G (Adam 0.01, clip 5, emb/hidden 32, batch 64); MLE 80 epochs
# (pre_epoch_num) of every minibatch; 80 D calls; 100 adversarial epochs (adversarial_epoch_num) of 1 G step and
# 15 D calls of 3 minibatches (here 96 fresh + 96 real sequences, one pass); evaluation every 5 epochs.
GAN_REAL = {
    "batch_size": 64, "g_emb": 32, "g_hidden": 32, "g_lr": 0.01, "g_clip": 5.0,
    "pretrain_steps": 80, "mle_batches": 0, "d_pretrain_steps": 80, "adv_steps": 100, "adv_g_steps": 1,
    "d_steps": 15, "d_samples": 96, "d_epochs": 1, "steps": 260, "eval_every": 5,
}
TEXYGEN_D = {"d_emb": 32, "d_filter_sizes": [2, 3], "d_num_filters": [100, 200], "d_l2": 0.2, "d_lr": 1e-4}

EXPECTED_COCO = {
    # Mle.train_real: pre_epoch_num = 80 epochs of int(10000 / 64) = 156 minibatches, evaluated every 5 epochs
    "mle": {"steps": 12480, "eval_every": 780, "g_lr": 0.01, "g_clip": 5.0, "batch_size": 64},
    # Seqgan.train_real: Reward(generator, .8) (no effect: rollout_update_rate 0), get_reward(..., 16, ...);
    # Discriminator(emd_dim=self.emb_dim = 32, [2, 3] x [100, 200]) without its keep 0.75 (never passed)
    "seqgan": {**GAN_REAL, **TEXYGEN_D, "d_dropout": 0.0, "rollout_num": 16, "rollout_update_rate": 0.0},
    # Rankgan.train_real: the same schedule; the ranker's keep 0.75 is applied always; its l2 0.2 is never used
    "rankgan": {**GAN_REAL, **TEXYGEN_D, "d_l2": "<absent>", "d_dropout": 0.25, "rollout_num": 16, "rollout_update_rate": 0.0},
    # Maligan.train_real: `for index in range(1)` (train_oracle: range(50)); D without dropout
    "maligan": {**GAN_REAL, **TEXYGEN_D, "d_dropout": 0.0, "adv_g_steps": 1, "mali_reward": "texygen"},
    # Leakgan.train_real: 80 MLE epochs, 80 D calls, 100 // 10 outer epochs of {10 x (1 G step, rollout_num=4,
    # 15 D calls), 5 MLE epochs, 5 D calls} = 16 steps each; dis_embedding_dim 64, goal_size 16, step_size 4
    "leakgan": {
        "batch_size": 64, "g_lr": 0.01, "g_clip": 5.0, "pretrain_steps": 80, "mle_batches": 0, "d_pretrain_steps": 80,
        "adv_steps": 160, "steps": 320, "eval_every": 5, "adv_g_steps": 1, "d_steps": 15, "rollout_num": 4,
        "leak_adv_epochs": 10, "leak_inter_mle_epochs": 5, "leak_inter_d_calls": 5, "leak_goal_size": 16,
        "leak_step_size": 4, "d_emb": 64, "d_filter_sizes": [2, 3], "d_num_filters": [100, 200], "d_dropout": 0.25,
        "d_lr": 5e-5, "d_samples": 96, "d_epochs": 1,
    },
    # no published budget: MLE's generator updates (12,480) on MLE's evaluation grid, every evaluation full;
    # CoT's published optimisers and mediator
    "cot": {"steps": 12480, "eval_every": 780, "full_eval_every": 0, "g_lr": 1e-3, "g_betas": [0.9, 0.95], "g_clip": 0.0,
            "m_emb": 64, "m_hidden": 64, "m_dropout": 0.5, "m_lr": 3e-3},
    "cot-strong": {"steps": 12480, "eval_every": 780, "full_eval_every": 0, "g_lr": 1e-3, "m_lr": 3e-3},
}
EXPECTED_EMNLP_CHANGES = {  # the same everywhere but MLE's epoch (270,000 sentences: 4,218 minibatches) and CoT's budget
    "mle": {"steps": 337440, "eval_every": 21090},
    "cot": {"steps": 337440, "eval_every": 21090},
    "cot-strong": {"steps": 337440, "eval_every": 21090},
}

# sha256 (first 16 hex digits) of the canonical JSON of resolve_settings(algo, "synthetic", "paper"), recorded
# before the real-text profiles existed. Changing a synthetic paper setting on purpose: update it here and in
# protocol.md.
SYNTHETIC_PAPER_FINGERPRINTS = {
    "cot": "4957e81185a6afd7",
    "cot-strong": "325fe0839cfbce63",
    "gcn": "a56817e3a5ba1cea",
    "leakgan": "3e31a03372869d2f",
    "maligan": "fad23ca6d9daf080",
    "mle": "f01b598172caa087",
    "rankgan": "bd2a72ac68e0d41d",
    "seqgan": "0b9f52db7fe2f087",
}


def _fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


@pytest.mark.parametrize("algo", sorted(EXPECTED_COCO))
def test_coco_paper_profile_is_texygens_real_data_setting(algo):
    s = resolve_settings(algo, "coco", "paper")
    got = {k: s.get(k, "<absent>") for k in EXPECTED_COCO[algo]}
    assert got == EXPECTED_COCO[algo]
    if algo == "maligan":
        assert "rollout_num" not in s  # MaliGAN rewards the sequence as it is


@pytest.mark.parametrize("algo", sorted(EXPECTED_COCO))
def test_emnlp_paper_profile_is_the_same_schedule(algo):
    s = resolve_settings(algo, "emnlp", "paper")
    expected = {**EXPECTED_COCO[algo], **EXPECTED_EMNLP_CHANGES.get(algo, {})}
    assert {k: s.get(k, "<absent>") for k in expected} == expected
    assert s["text_max_len"] == 51  # the suite's (CoT Tables 2-3: max length 51), not the profile's


@pytest.mark.parametrize("algo", sorted(EXPECTED_COCO))
def test_settings_command_names_the_real_text_profile_as_the_source(algo):
    sources = settings_sources(algo, "coco", "paper")
    assert sources["steps"][1] == "profile paper on coco"
    assert sources["eval_every"][1] == "profile paper on coco"


def test_budgets_agree_in_generator_updates():
    """MLE's paper run on COCO is the GANs' pre-training (80 epochs of 156 minibatches) and CoT's budget."""
    mle = resolve_settings("mle", "coco", "paper")
    for algo in ("seqgan", "rankgan", "maligan", "leakgan"):
        assert resolve_settings(algo, "coco", "paper")["pretrain_steps"] * (10000 // 64) == mle["steps"]
    for algo in ("cot", "cot-strong"):
        s = resolve_settings(algo, "coco", "paper")
        assert (s["steps"], s["eval_every"]) == (mle["steps"], mle["eval_every"])


def test_real_text_paper_differs_from_the_synthetic_paper_where_texygen_does():
    assert resolve_settings("maligan", "synthetic", "paper")["adv_g_steps"] == 50  # train_oracle: range(50)
    assert resolve_settings("mle", "synthetic", "paper")["steps"] == 120 * 156  # SeqGAN's 120 epochs (Table 1)
    syn = resolve_settings("seqgan", "synthetic", "paper")  # SeqGAN's own code, not Texygen's
    assert (syn["pretrain_steps"], syn["d_steps"], syn["d_samples"], syn["d_emb"]) == (120, 5, 9984, 64)
    assert resolve_settings("cot", "synthetic", "paper")["steps"] == 200_000


@pytest.mark.parametrize("algo", sorted(SYNTHETIC_PAPER_FINGERPRINTS))
def test_synthetic_paper_profiles_are_unchanged(algo):
    assert _fingerprint(resolve_settings(algo, "synthetic", "paper")) == SYNTHETIC_PAPER_FINGERPRINTS[algo]


@pytest.mark.parametrize("algo", sorted(SYNTHETIC_PAPER_FINGERPRINTS))
@pytest.mark.parametrize("suite", ["coco", "emnlp"])
def test_quick_profiles_on_real_text_are_untouched_by_paper(algo, suite):
    """The real-text paper entries leave the quick profile alone (it stays minutes long)."""
    s = resolve_settings(algo, suite, "quick")
    assert s["steps"] <= 600 and s["eval_samples"] == 200
