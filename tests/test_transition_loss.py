"""Transition loss.

Mixture mode: value, λ ramp over optimiser updates (ESPnet's trainer with gradient accumulation and
a skipped step), and the ramp surviving a checkpoint. Each utterance's CE counted once with the
plain CE. Distill mode, on tiny models: value against a hand computation, KL 0 for a teacher equal
to the student, the teacher kept out of parameters / state_dict / training, and its errors.
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
        for _ in range(2):  # micro-batches of one update: the same λ
            loss, stats = hook(_inputs(ce, lang))
            lam = min(1.0, step / 4)
            assert loss.item() == pytest.approx((1 - lam) * 1.5 + lam * 4.5)
        seen.append(stats["transition_lambda"].item())
        hook.on_update()
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
        hooks["transition"].on_update()
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
    trainable = {id(p) for p in student.parameters() if p.requires_grad}
    assert not any(id(p) in trainable for p in teacher.parameters())
    assert not any(p.requires_grad for p in teacher.parameters())
    plain = CSSTTask.build_model(tiny_model_args(tiny_llm, tiny_whisper))
    assert student.state_dict().keys() == plain.state_dict().keys()
    # device / dtype moves of the student reach the teacher
    student.double()
    assert {p.dtype for p in teacher.parameters()} == {torch.float64}


def test_teacher_shares_the_students_frozen_backbone(tiny_llm, tiny_whisper, teacher_files):
    """The teacher's frozen encoder and LLM weights are the student's (same storage); it owns only what
    its checkpoint holds (projector, LoRA), and those are its own values, not the student's."""
    student = _distill_student(tiny_llm, tiny_whisper, teacher_files)
    teacher = student.aux_losses["transition"].teacher
    saved = torch.load(teacher_files["teacher_model"], weights_only=True)
    mine = dict(student.named_parameters())
    shared = own = 0
    for name, p in teacher.named_parameters():
        if name in saved:
            own += 1
            assert p.data_ptr() != mine[name].data_ptr() and torch.equal(p, saved[name]), name
        else:
            shared += 1
            assert name.startswith(("encoder.", "llm.")) and p.data_ptr() == mine[name].data_ptr(), name
    frozen = [n for n, p in student.named_parameters() if not p.requires_grad and n.startswith(("encoder.", "llm."))]
    assert shared == len(frozen) > 0 and own > 0
    # what the teacher computes is what the separately built previous-phase model computes
    whole = CSSTTask.build_frozen_model(teacher_files["teacher_config"], teacher_files["teacher_model"])
    batch = _batch(student.llm.vocab_size, LANG)
    inputs = {k: batch[k] for k in ("speech", "speech_lengths", "text", "prompt", "prompt_lengths")}
    with torch.no_grad():
        assert torch.allclose(teacher.target_logits(**inputs)[0], whole.target_logits(**inputs)[0], atol=1e-5)


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

    monkeypatch.setattr(student.aux_losses["transition"].teacher, "target_hidden", fail)
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


# ------------------------------------------------------------------ schedule and CE, on tiny models
def _train_epoch(model, batches, accum_grad, nan_updates=()):
    """ESPnet's training loop (CSSTTrainer) over ``batches``; the loss of every micro-batch of the
    (1-based) updates ``nan_updates`` is NaN, so that ESPnet skips those steps. Returns λ per micro-batch."""
    from espnet2.train.distributed_utils import DistributedOption
    from espnet2.train.reporter import Reporter

    from csst_espnet.train.trainer import CSSTTrainer

    args = tiny_model_args(Path("unused"), Path("unused"))
    args.accum_grad = accum_grad
    options = CSSTTrainer.build_options(args)
    seen = []

    def record(module, inputs, output):
        seen.append(output[1]["transition_lambda"].item())

    def poison(module, inputs, output):  # after record: seen counts this micro-batch
        if module.training and (len(seen) - 1) // accum_grad + 1 in nan_updates:
            return (output[0] * float("nan"), *output[1:])

    handles = [model.aux_losses["transition"].register_forward_hook(record), model.register_forward_hook(poison)]
    reporter = Reporter()
    reporter.set_epoch(1)
    with reporter.observe("train") as sub:
        CSSTTrainer.train_one_epoch(
            model=model, iterator=[([f"u{i}" for i in range(len(b["speech"]))], dict(b)) for b in batches],
            optimizers=[torch.optim.SGD(model.parameters(), lr=1e-3)], schedulers=[None], scaler=None,
            reporter=sub, summary_writer=None, options=options, distributed_option=DistributedOption(),
        )
    with reporter.observe("valid") as sub:
        CSSTTrainer.validate_one_epoch(model=model, iterator=[(["u0", "u1"], dict(batches[0]))], reporter=sub,
                                       options=options, distributed_option=DistributedOption())
    for handle in handles:
        handle.remove()
    return seen


def test_lambda_counts_optimiser_updates(tiny_llm, tiny_whisper):
    """accum_grad 4: λ after k updates is min(1, k / ramp_steps) for every micro-batch of update k + 1;
    the skipped (non-finite) second update and validation do not count."""
    spec = {"name": "transition", "conf": {"ramp_steps": 3}}
    torch.manual_seed(0)
    model = CSSTTask.build_model(tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[spec]))
    batch = _batch(model.llm.vocab_size, ["en", "cs"])
    seen = _train_epoch(model, [batch] * 18, accum_grad=4, nan_updates=(2,))
    updates_before = [0] * 4 + [1] * 4 + [1] * 4 + [2] * 4 + [3] * 2  # update 2 skipped; 2 left-over micro-batches
    assert seen[:18] == pytest.approx([min(1.0, k / 3) for k in updates_before])
    assert seen[18:] == [1.0]  # validation, after the 3 updates taken
    assert int(model.aux_losses["transition"].step) == 3
    assert model.state_dict()["aux_losses.transition.step"].item() == 3  # checkpoints (--resume) keep it


def _per_utterance_ce(model, batch):
    """Each utterance's mean target-token CE and target-token sum/count, computed independently."""
    inputs = {k: batch[k] for k in ("speech", "speech_lengths", "text", "prompt", "prompt_lengths")}
    with torch.no_grad():
        logits = model.target_logits(**inputs)[0]
    text, mask = batch["text"], batch["text"] != -1
    sums = [torch.nn.functional.cross_entropy(logits[b, mask[b]], text[b, mask[b]], reduction="sum")
            for b in range(len(text))]
    counts = mask.sum(1)
    return torch.stack(sums), counts


def test_mixture_counts_each_utterance_ce_once(tiny_llm, tiny_whisper):
    """With the plain CE on (ce_weight 1), the mixture already contains every utterance's CE: the
    loss is the mixture alone, not CE(all) + mixture."""
    spec = {"name": "transition", "weight": 2.0, "conf": {"ramp_steps": 4, "start": 0.25}}
    args = tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[spec])
    args.model_conf["ce_weight"] = 1.0
    torch.manual_seed(0)
    model = CSSTTask.build_model(args).eval()
    batch = _batch(model.llm.vocab_size, LANG)
    loss, stats, _ = model(**batch)
    sums, counts = _per_utterance_ce(model, batch)
    ce = sums / counts
    is_cs = torch.tensor([x == "cs" for x in LANG])
    expected = 2.0 * (0.75 * ce[~is_cs].mean() + 0.25 * ce[is_cs].mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["loss_ce"].item() == pytest.approx((sums.sum() / counts.sum()).item(), rel=1e-5)  # all tokens


def test_distill_with_plain_ce_counts_each_utterance_ce_once(tiny_llm, tiny_whisper, teacher_files):
    """Distill with ce_weight 1 (mini_cs phase 3): L = CE_tok(previous-phase utterances) + w · [CE(cs) + γ·KL];
    the code-switch utterances' CE is in the transition only."""
    spec = {"name": "transition", "weight": 0.5, "conf": {"mode": "distill", "gamma": 0.3}}
    args = tiny_model_args(tiny_llm, tiny_whisper, aux_losses=[spec], teacher=teacher_files)
    args.model_conf["ce_weight"] = 1.0
    torch.manual_seed(2)
    model = CSSTTask.build_model(args).eval()
    batch = _batch(model.llm.vocab_size, LANG)
    loss, stats, _ = model(**batch)
    sums, counts = _per_utterance_ce(model, batch)
    is_cs = torch.tensor([x == "cs" for x in LANG])
    ce_prev_tokens = sums[~is_cs].sum() / counts[~is_cs].sum()
    ce_cs = (sums / counts)[is_cs].mean()
    assert stats["transition_ce_cs"].item() == pytest.approx(ce_cs.item(), rel=1e-5)
    expected = ce_prev_tokens + 0.5 * (ce_cs + 0.3 * stats["transition_kl"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


class _FixedTeacher(torch.nn.Module):
    """A teacher whose hidden states are given (B, L, H); ``row`` in the batch picks its utterances."""

    def __init__(self, hidden, head):
        super().__init__()
        self.teacher_hidden, self.llm = hidden, head
        head.vocab_size = head.out_features
        head.head = head

    def target_hidden(self, speech, speech_lengths, row):
        return self.teacher_hidden[row], {}, {}


def test_chunked_kl_equals_full_vocabulary_kl_in_value_and_gradients():
    """KL over chunks of 3 target tokens = KL over the whole batch's logits (1e-5), loss and gradients."""
    torch.manual_seed(0)
    batch, length, width, vocab, tau = 4, 5, 6, 11, 2.0
    student_head = torch.nn.Linear(width, vocab).double()
    teacher = _FixedTeacher(torch.randn(batch, length, width, dtype=torch.float64),
                            torch.nn.Linear(width, vocab).double())
    hooks, _ = build_aux_losses([{"name": "transition", "conf": {"mode": "distill", "temperature": tau,
                                                                 "chunk_size": 3}}],
                                None, LANGS, load_teacher=lambda: teacher)
    hidden = torch.randn(batch, length, width, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(length) < torch.tensor([5, 2, 4, 3])[:, None]
    lang = torch.tensor([0, 3, 1, 0])  # utterance 1 is code-switched: no KL there
    inputs = AuxLossInputs(
        projector_aux={}, lang=lang, languages=LANGS, ce_per_utt=torch.zeros(batch, dtype=torch.float64),
        hidden=hidden, lm_head=student_head, target_mask=mask,
        model_inputs=dict(speech=torch.zeros(batch, 3), speech_lengths=torch.full((batch,), 3),
                          row=torch.arange(batch)))
    loss, stats = hooks["transition"](inputs)
    params = [hidden, student_head.weight, student_head.bias]
    grads = torch.autograd.grad(loss, params)

    rows = (lang != 3)[:, None] & mask
    log_p_s = torch.log_softmax(student_head(hidden) / tau, -1)[rows]  # (N, V): every logit at once
    log_p_t = torch.log_softmax(teacher.llm(teacher.teacher_hidden) / tau, -1)[rows]
    ref = tau**2 * (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    assert torch.allclose(stats["transition_kl"], ref, atol=1e-5)
    for got, want in zip(grads, torch.autograd.grad(ref, params)):
        assert torch.allclose(got, want, atol=1e-5)
    assert teacher.llm.weight.grad is None
