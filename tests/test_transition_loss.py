"""Transition loss.

Mixture mode: value, λ ramp, and the ramp surviving a checkpoint. Distill mode, on tiny models:
value against a hand computation, KL 0 for a teacher equal to the student, the teacher kept out
of parameters / state_dict / training, and its errors.
"""

import re
from pathlib import Path

import pytest
import torch

from conftest import synth_utterance
from csst_espnet.losses.abs_aux_loss import AuxLossInputs
from csst_espnet.losses.registry import build_aux_losses
from csst_espnet.tasks.csst import CSSTTask
from train_utils import save_run, tiny_model_args

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
    with pytest.raises(ValueError, match="mode 'mix'.*available: mixture, distill"):
        build_aux_losses([{"name": "transition", "conf": {"mode": "mix"}}], None, LANGS)
    with pytest.raises(ValueError, match=r"mode 'mixture' takes .* not \['gamma'\]"):
        build_aux_losses([{"name": "transition", "conf": {"gamma": 1.0}}], None, LANGS)
    with pytest.raises(ValueError, match="'distill' needs the previous phase's model"):
        build_aux_losses([{"name": "transition", "conf": {"mode": "distill"}}], None, LANGS)
    with pytest.raises(ValueError, match="unexpected keyword argument 'teacher_config'"):
        build_aux_losses([{"name": "transition", "conf": {"mode": "distill", "teacher_config": "x"}}], None, LANGS,
                         load_teacher=lambda: None)


# ---------------------------------------------------------------------------------- distill mode
MODEL_LANGS = ["zh", "en", "cs"]  # the languages of tiny_model_args


def _save(args, model, out_dir):
    """A run's config.yaml and model file; returns the task's teacher options for them."""
    conf = {"teacher_config": str(out_dir / "config.yaml"), "teacher_model": str(out_dir / "valid.acc.ave.pth")}
    save_run(args, model, Path(conf["teacher_config"]), Path(conf["teacher_model"]))
    return conf


def _distill_student(tiny_llm, tiny_whisper, teacher, seed=2, **conf):
    spec = {"name": "transition", "conf": {"mode": "distill", **conf}}
    torch.manual_seed(seed)
    return CSSTTask.build_model(tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[spec], teacher=teacher))


@pytest.fixture(scope="module")
def teacher_files(tiny_llm, tiny_whisper, tmp_path_factory):
    """A tiny previous-phase model that differs from the students (another projector init)."""
    args = tiny_model_args(tiny_llm, tiny_whisper)
    torch.manual_seed(1)
    return _save(args, CSSTTask.build_model(args), tmp_path_factory.mktemp("teacher") / "exp")


def _batch(vocab, lang):
    """Model inputs of ``len(lang)`` utterances of different lengths (padding: -1 / zeros)."""
    gen = torch.Generator().manual_seed(0)
    n = len(lang)
    wavs = [torch.from_numpy(synth_utterance(i, 0.3 + 0.15 * i)) for i in range(n)]
    speech_lengths = torch.tensor([len(w) for w in wavs])
    speech = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    text_lengths, prompt_lengths = torch.tensor([5, 3, 6, 4][:n]), torch.tensor([4, 6, 5, 3][:n])
    text = torch.randint(4, vocab, (n, 6), generator=gen).masked_fill(
        torch.arange(6) >= text_lengths[:, None], -1)
    prompt = torch.randint(4, vocab, (n, 6), generator=gen).masked_fill(
        torch.arange(6) >= prompt_lengths[:, None], -1)
    return dict(speech=speech, speech_lengths=speech_lengths, text=text, text_lengths=text_lengths,
                prompt=prompt, prompt_lengths=prompt_lengths,
                lang=torch.tensor([MODEL_LANGS.index(x) for x in lang])[:, None])


LANG = ["en", "cs", "zh", "cs"]  # the longest utterance is code-switch: the teacher sees less padding


def test_distill_equals_reference(tiny_llm, tiny_whisper, teacher_files):
    gamma, tau = 0.5, 2.0
    student = _distill_student(tiny_llm, tiny_whisper, teacher_files, gamma=gamma, temperature=tau).eval()
    batch = _batch(student.llm.vocab_size, LANG)
    loss, stats, _ = student(**batch)

    # by hand: CE per cs utterance, and KL per target token of the others on the full batch
    model_inputs = {k: batch[k] for k in ("speech", "speech_lengths", "text", "prompt", "prompt_lengths")}
    teacher = CSSTTask.build_frozen_model(teacher_files["teacher_config"], teacher_files["teacher_model"])
    with torch.no_grad():
        s_logits = student.target_logits(**model_inputs)[0]  # (B, L, V)
        t_logits = teacher.target_logits(**model_inputs)[0]
    text, mask = batch["text"], batch["text"] != -1
    is_cs = torch.tensor([x == "cs" for x in LANG])
    ce_cs = torch.stack([
        torch.nn.functional.cross_entropy(s_logits[b, mask[b]], text[b, mask[b]]) for b in range(4) if is_cs[b]
    ]).mean()
    p_t = torch.softmax(t_logits / tau, -1)
    kl_tok = (p_t * (torch.log_softmax(t_logits / tau, -1) - torch.log_softmax(s_logits / tau, -1))).sum(-1)
    kl = tau**2 * kl_tok[mask & ~is_cs[:, None]].mean()

    assert kl.item() > 1e-3  # teacher and student differ
    assert stats["transition_ce_cs"].item() == pytest.approx(ce_cs.item(), rel=1e-5)
    assert stats["transition_kl"].item() == pytest.approx(kl.item(), rel=1e-4)
    assert loss.item() == pytest.approx((ce_cs + gamma * kl).item(), rel=1e-5)


def test_kl_is_zero_for_teacher_equal_to_student(tiny_llm, tiny_whisper, tmp_path):
    args = tiny_model_args(tiny_llm, tiny_whisper)
    torch.manual_seed(3)
    same = CSSTTask.build_model(args)
    student = _distill_student(tiny_llm, tiny_whisper, _save(args, same, tmp_path / "same")).eval()
    student.load_state_dict(same.state_dict())
    loss, stats, _ = student(**_batch(student.llm.vocab_size, LANG))
    assert abs(stats["transition_kl"].item()) < 1e-6
    assert loss.item() == pytest.approx(stats["transition_ce_cs"].item(), abs=1e-6)


def test_teacher_is_outside_parameters_and_state_dict(tiny_llm, tiny_whisper, teacher_files):
    student = _distill_student(tiny_llm, tiny_whisper, teacher_files)
    teacher = student.aux_losses["transition"].teacher
    assert teacher is not None and not teacher.training
    student_params = {id(p) for p in student.parameters()}
    assert not any(id(p) in student_params for p in teacher.parameters())
    assert not any(p.requires_grad for p in teacher.parameters())
    plain = CSSTTask.build_model(tiny_model_args(tiny_llm, tiny_whisper))
    assert student.state_dict().keys() == plain.state_dict().keys()
    # device / dtype moves of the student reach the teacher
    student.double()
    assert {p.dtype for p in teacher.parameters()} == {torch.float64}


def test_training_step_leaves_teacher_unchanged(tiny_llm, tiny_whisper, teacher_files):
    student = _distill_student(tiny_llm, tiny_whisper, teacher_files).train()
    teacher = student.aux_losses["transition"].teacher
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    projector_before = [p.detach().clone() for p in student.projector.parameters()]
    optim = torch.optim.Adam(student.parameters(), lr=1e-2)
    loss, stats, _ = student(**_batch(student.llm.vocab_size, LANG))
    assert stats["transition_kl"].item() > 0
    loss.backward()
    optim.step()
    assert not teacher.training and all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(projector_before, student.projector.parameters()))


def test_no_teacher_pass_without_previous_phase_utterances(tiny_llm, tiny_whisper, teacher_files, monkeypatch):
    student = _distill_student(tiny_llm, tiny_whisper, teacher_files).eval()

    def fail(**kwargs):
        raise AssertionError("teacher ran on a batch without previous-phase utterances")

    monkeypatch.setattr(student.aux_losses["transition"].teacher, "target_logits", fail)
    loss, stats, _ = student(**_batch(student.llm.vocab_size, ["cs", "cs"]))
    assert stats["transition_kl"].item() == 0.0
    assert loss.item() == pytest.approx(stats["transition_ce_cs"].item())


def test_trained_student_decodes_without_its_teacher(tiny_llm, tiny_whisper, tmp_path):
    """Inference builds a phase-3 model without its aux losses: no second model is loaded, and
    the teacher's files need not exist where the model is decoded."""
    import shutil

    args = tiny_model_args(tiny_llm, tiny_whisper)
    torch.manual_seed(1)
    teacher = _save(args, CSSTTask.build_model(args), tmp_path / "phase2")
    student = _distill_student(tiny_llm, tiny_whisper, teacher).eval()
    spec = {"name": "transition", "conf": {"mode": "distill"}}
    files = _save(tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[spec], teacher=teacher), student,
                  tmp_path / "phase3")
    shutil.rmtree(tmp_path / "phase2")
    decoded, train_args = CSSTTask.build_model_from_file(None, files["teacher_model"])
    assert len(decoded.aux_losses) == 0 and train_args.aux_losses == [spec]
    batch = _batch(student.llm.vocab_size, LANG)
    with torch.no_grad():
        expected, _, _ = student.encode(batch["speech"], batch["speech_lengths"])
        got, _, _ = decoded.eval().encode(batch["speech"], batch["speech_lengths"])
    assert torch.equal(got, expected)
    # a model file of another model is an error, not a silent partial load
    other = tiny_model_args(tiny_llm, tiny_whisper)
    other.projector_conf = {"downsample_rate": 2, "hidden_size": 16}
    _save(other, CSSTTask.build_model(other), tmp_path / "other")
    with pytest.raises(RuntimeError, match="size mismatch"):
        CSSTTask.build_model_from_file(str(tmp_path / "other" / "config.yaml"), files["teacher_model"])


def test_missing_teacher_is_named(tiny_llm, tiny_whisper, teacher_files, tmp_path):
    spec = {"name": "transition", "conf": {"mode": "distill"}}
    missing = str(tmp_path / "exp" / "csst_train_phase2" / "valid.acc.ave.pth")
    teacher = {"teacher_config": teacher_files["teacher_config"], "teacher_model": missing}
    with pytest.raises(FileNotFoundError, match=re.escape(f"--teacher_model {missing} does not exist")):
        CSSTTask.build_model(tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[spec], teacher=teacher))
    with pytest.raises(ValueError, match="give --teacher_config"):
        CSSTTask.build_model(tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[spec]))


def test_teacher_vocabulary_must_match(tiny_llm, tiny_whisper, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny_llm)
    config.vocab_size += 16
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "other_llm")
    args = tiny_model_args(tmp_path / "other_llm", tiny_whisper)
    teacher = _save(args, CSSTTask.build_model(args), tmp_path / "other")
    student = _distill_student(tiny_llm, tiny_whisper, teacher)
    vocab = student.llm.vocab_size
    with pytest.raises(ValueError, match=f"teacher's vocabulary has {vocab + 16} tokens, the student's {vocab}"):
        student(**_batch(vocab, LANG))
