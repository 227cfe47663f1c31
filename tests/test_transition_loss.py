"""Transition loss (mixture mode): value, λ ramp, and the ramp surviving a checkpoint."""

import pytest
import torch

from csst_espnet.losses.abs_aux_loss import AuxLossInputs
from csst_espnet.losses.registry import build_aux_losses

LANGS = ("zh", "en", "es", "cs")


def _inputs(ce, lang):
    return AuxLossInputs(projector_aux={}, lang=torch.tensor(lang), languages=LANGS, ce_per_utt=torch.tensor(ce))


def test_mixture_value_and_ramp():
    hooks, weights = build_aux_losses([{"name": "transition", "conf": {"ramp_steps": 4}}], None, LANGS)
    hook = hooks["transition"].train()
    ce, lang = [1.0, 3.0, 2.0, 6.0], [0, 3, 1, 3]  # prev: 1, 2 -> 1.5 ; cs: 3, 6 -> 4.5
    seen = []
    for step in range(6):
        loss, stats = hook(_inputs(ce, lang))
        lam = min(1.0, step / 4)
        assert loss.item() == pytest.approx((1 - lam) * 1.5 + lam * 4.5)
        seen.append(stats["transition_lambda"].item())
    assert seen == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    assert weights == {"transition": 1.0}


def test_batch_without_cs_utterances_and_eval_mode():
    hooks, _ = build_aux_losses([{"name": "transition", "conf": {"ramp_steps": 2, "start": 0.5}}], None, LANGS)
    hook = hooks["transition"].eval()
    loss, _ = hook(_inputs([2.0, 4.0], [0, 1]))
    assert loss.item() == pytest.approx(0.5 * 3.0)
    assert int(hook.step) == 0  # validation does not advance the ramp


def test_ramp_position_is_saved_and_restored():
    hooks, _ = build_aux_losses([{"name": "transition", "conf": {"ramp_steps": 10}}], None, LANGS)
    for _ in range(3):
        hooks["transition"].train()(_inputs([1.0], [3]))
    restored, _ = build_aux_losses([{"name": "transition", "conf": {"ramp_steps": 10}}], None, LANGS)
    restored.load_state_dict(hooks.state_dict())
    assert restored["transition"].weight() == pytest.approx(0.3)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="cs_label 'xx'"):
        build_aux_losses([{"name": "transition", "conf": {"cs_label": "xx"}}], None, LANGS)
    with pytest.raises(ValueError, match="mode 'distill'"):
        build_aux_losses([{"name": "transition", "conf": {"mode": "distill"}}], None, LANGS)
