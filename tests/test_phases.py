"""PART's phase mechanisms (docs/architecture.md §3): progressive unfreezing of the encoder, the LLM's
LoRA switched on by phase, data mixtures with temperature language sampling, text-only examples, and
more than two languages in one model."""

import numpy as np
import pytest
import torch

from conftest import SENTENCES, synth_utterance

LANGUAGES = "[zh, en, es, cs]"


def _args(tiny_llm, tiny_whisper, *extra, projector_conf="{downsample_rate: 2, hidden_size: 32}"):
    from csst_espnet.tasks.csst import CSSTTask

    return CSSTTask.get_parser().parse_args([
        "--encoder_conf", f"model_name_or_path={tiny_whisper}",
        "--projector_conf", projector_conf,
        "--llm_conf", f"{{model_name_or_path: {tiny_llm}, lora: {{r: 4, alpha: 8}}}}",
        "--languages", LANGUAGES,
        *extra,
    ])


def _model(args):
    from csst_espnet.tasks.csst import CSSTTask

    torch.manual_seed(0)
    return CSSTTask.build_model(args).train()


def _batch(args, items):
    """Collated batch of ``items``: (uid, raw data) as ESPnet's dataset reads them."""
    from csst_espnet.tasks.csst import CSSTTask

    pre = CSSTTask.build_preprocess_fn(args, train=False)
    return CSSTTask.build_collate_fn(args, train=True)([(uid, pre(uid, data)) for uid, data in items])[1]


def _speech_items(n, lang="en", task="asr", offset=0):
    return [(f"s{offset + i}", {"speech": synth_utterance(offset + i, 0.3 + 0.05 * i), "text": SENTENCES[i % 4],
                                "lang": lang, "task": task}) for i in range(n)]


def _text_items(n):
    return [(f"t{i}", {"text": SENTENCES[i], "src_text": SENTENCES[4 + i], "lang": "zh", "task": "mt"})
            for i in range(n)]


def _train(model, batch, steps, optim):
    """``steps`` optimiser updates on ``batch``, the model told of each (as CSSTTrainer does)."""
    for _ in range(steps):
        loss, _, _ = model(**batch)
        optim.zero_grad()
        loss.backward()
        optim.step()
        model.on_update()
    return loss


def _changed(model, before):
    return {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# --------------------------------------------------------------------------------------------------
# progressive unfreezing and the LoRA switch
# --------------------------------------------------------------------------------------------------


def test_each_phase_trains_the_parameters_its_config_names(tiny_llm, tiny_whisper):
    """Frozen encoder, LoRA frozen (train_llm_lora false), unfreezing the last layer at update 2 and the
    whole encoder at update 4: the optimiser holds every parameter from the start (as ESPnet builds it),
    with weight decay, and exactly the named parameters change in each stretch."""
    args = _args(tiny_llm, tiny_whisper, "--train_llm_lora", "false",
                 "--encoder_unfreeze", "[{step: 2, layers: last 1}, {step: 4, layers: all}]")
    model = _model(args)
    batch = _batch(args, _speech_items(3))
    requires_grad = {n for n, p in model.named_parameters() if p.requires_grad}
    optim = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)

    def is_encoder(name, *parts):
        return any(name.startswith(f"encoder.encoder.{part}.") for part in parts)

    projector = {n for n, _ in model.named_parameters() if n.startswith("projector.")}
    last = {n for n, _ in model.named_parameters() if is_encoder(n, "layers.1", "layer_norm")}
    rest = {n for n, _ in model.named_parameters() if is_encoder(n, "layers.0", "conv1", "conv2")}
    assert projector and last and rest

    expected = [projector, projector | last, projector | last | rest]
    for stretch, names in enumerate(expected):
        before = _snapshot(model)
        _train(model, batch, 2, optim)
        assert _changed(model, before) == names, f"updates {2 * stretch}-{2 * stretch + 1}"
    assert {n for n, p in model.named_parameters() if p.requires_grad} == requires_grad  # same set all phase
    assert requires_grad == projector | last | rest
    assert not any("embed_positions" in n or n.startswith("llm.") for n in requires_grad)


def test_resume_restores_the_unfrozen_layers_and_a_new_phase_starts_at_zero(tiny_llm, tiny_whisper, tmp_path):
    from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

    spec = ["--encoder_unfreeze", "[{step: 2, layers: last 1}, {step: 100, layers: all}]"]
    args = _args(tiny_llm, tiny_whisper, *spec)
    model = _model(args)
    batch = _batch(args, _speech_items(2))
    _train(model, batch, 3, torch.optim.Adam(model.parameters(), lr=0.01))
    path = tmp_path / "checkpoint.pth"
    torch.save(model.state_dict(), path)

    resumed = _model(args)  # --resume: ESPnet loads the checkpoint's model state strictly
    resumed.load_state_dict(torch.load(path), strict=True)
    assert int(resumed.encoder_unfreeze.updates) == 3 and resumed.encoder_unfreeze.tail() == 1
    before = _snapshot(resumed)
    _train(resumed, batch, 1, torch.optim.Adam(resumed.parameters(), lr=0.01))
    changed = _changed(resumed, before)
    assert any(n.startswith("encoder.encoder.layers.1.") for n in changed)
    assert not any(n.startswith("encoder.encoder.layers.0.") for n in changed)

    resumed.start_phase()  # what CSSTTrainer.run does before ESPnet's resume: a new phase counts from 0
    assert int(resumed.encoder_unfreeze.updates) == 0 and resumed.encoder_unfreeze.tail() == 0

    later = _model(_args(tiny_llm, tiny_whisper))  # a next phase without a schedule: --init_param
    load_pretrained_model(str(path), later, ignore_init_mismatch=False)
    trained = model.state_dict()["encoder.encoder.layers.1.fc1.weight"]
    assert torch.equal(later.state_dict()["encoder.encoder.layers.1.fc1.weight"], trained)


def test_lora_trains_from_the_phase_that_says_so(tiny_llm, tiny_whisper):
    """train_llm_lora false: the adapters exist, are saved, and stay as they are; true: they train."""
    for train_lora in ("false", "true"):
        args = _args(tiny_llm, tiny_whisper, "--train_llm_lora", train_lora)
        model = _model(args)
        lora = {n for n, _ in model.named_parameters() if "lora_" in n}
        assert lora and lora <= set(model.state_dict())  # saved even when frozen
        before = _snapshot(model)
        _train(model, _batch(args, _speech_items(2)), 2, torch.optim.Adam(model.parameters(), lr=0.01))
        changed = _changed(model, before)
        assert lora & changed == (lora if train_lora == "true" else set())


# --------------------------------------------------------------------------------------------------
# text-only examples
# --------------------------------------------------------------------------------------------------


def test_text_only_examples_train_without_audio_and_move_the_lora(tiny_llm, tiny_whisper):
    args = _args(tiny_llm, tiny_whisper)
    model = _model(args)
    from csst_espnet.tasks.csst import CSSTTask

    pre = CSSTTask.build_preprocess_fn(args, train=False)
    (uid, data), = _text_items(1)
    out = pre(uid, data)
    source = pre.template.text_ids(data["src_text"])
    assert "speech" not in out
    assert pre.template.around("mt", "zh", source) == out["prompt"].tolist()
    with pytest.raises(ValueError, match="utterance 's9'.*missing audio"):
        pre("s9", {"speech": np.zeros(0, np.float32), "text": "x", "lang": "en", "task": "asr"})
    with pytest.raises(ValueError, match="utterance 't9'.*src_text"):
        pre("t9", {"text": "x", "lang": "zh", "task": "mt"})

    text_batch = _batch(args, _text_items(3))
    assert text_batch["speech"].shape == (3, 0) and text_batch["speech_lengths"].tolist() == [0, 0, 0]
    before = _snapshot(model)
    first = model(**text_batch)[0].item()
    last = _train(model, text_batch, 8, torch.optim.Adam(model.parameters(), lr=0.01)).item()
    changed = _changed(model, before)
    assert changed and all("lora_" in n for n in changed)  # no speech: only the LLM's adapters learn
    assert last < first

    # mixed batch: the speech row is encoded as alone, the text row gets no speech
    speech = _speech_items(1)
    mixed = _batch(args, speech + _text_items(1))
    alone = _batch(args, speech)
    assert mixed["speech_lengths"].tolist() == [len(speech[0][1]["speech"]), 0]
    model.eval()
    with torch.no_grad():
        enc, enc_lengths = model.encode_frames(mixed["speech"], mixed["speech_lengths"])
        ref, ref_lengths = model.encode_frames(alone["speech"], alone["speech_lengths"])
        loss, stats, _ = model(**mixed)
    assert enc_lengths[1] == 0 and enc_lengths[0] == ref_lengths[0]
    torch.testing.assert_close(enc[0, : ref_lengths[0]], ref[0, : ref_lengths[0]])
    assert torch.isfinite(loss)


# --------------------------------------------------------------------------------------------------
# data mixtures
# --------------------------------------------------------------------------------------------------


def _labels():
    counts = {("asr", "zh"): 800, ("asr", "en"): 150, ("asr", "es"): 50, ("st", "zh"): 60, ("st", "es"): 240,
              ("mt", "es"): 30}
    return {f"{task}-{lang}-{i:04d}": (task, lang) for (task, lang), n in counts.items() for i in range(n)}


@pytest.mark.parametrize("conf", [
    {"tasks": {"asr": 0.6, "st": 0.3, "mt": 0.1}, "temperature": 3.0},
    {"tasks": {"asr": 1, "st": 1}, "languages": {"zh": 2, "en": 1, "es": 1}},
    {},
])
def test_mixture_draws_the_stated_task_and_language_shares(conf):
    from csst_espnet.data.mixture import MixtureSampler

    labels = _labels()
    sampler = MixtureSampler(labels, conf, batch_size=10, num_batches=2000)
    utts = [u for batch in sampler.generate(7) for u in batch]
    assert len(utts) == 20000
    counts = {}
    for task, lang in labels.values():
        counts.setdefault(task, {}).setdefault(lang, 0)
        counts[task][lang] += 1
    tasks = conf.get("tasks") or {t: sum(c.values()) for t, c in counts.items()}
    for task, share in tasks.items():
        p_task = share / sum(tasks.values())
        n = {lang: counts[task][lang] for lang in counts[task]}
        if "languages" in conf:
            weights = {lang: conf["languages"][lang] for lang in n}
        else:
            weights = {lang: c ** (1 / conf.get("temperature", 1.0)) for lang, c in n.items()}
        for lang, w in weights.items():
            expected = p_task * w / sum(weights.values())  # p_l ∝ n_l^(1/T) inside the task
            got = sum(labels[u] == (task, lang) for u in utts) / len(utts)
            assert got == pytest.approx(expected, abs=0.012), (task, lang)
    drawn = [labels[u][0] for u in utts]
    assert set(drawn) == set(tasks)


def test_mixture_is_deterministic_per_seed_and_splits_batches_over_ranks():
    from csst_espnet.data.mixture import MixtureSampler

    conf = {"tasks": {"asr": 1, "st": 1}, "temperature": 5}
    sampler = MixtureSampler(_labels(), conf, batch_size=4, num_batches=50)
    assert sampler.generate(3) == sampler.generate(3) != sampler.generate(4)
    ranks = [MixtureSampler(_labels(), conf, 4, 50, rank=r, world_size=2).generate(3) for r in (0, 1)]
    for full, a, b in zip(sampler.generate(3), *ranks):
        assert a == full[0::2] and b == full[1::2]
    # a pool is gone through before an utterance repeats
    small = MixtureSampler({f"u{i}": ("asr", "en") for i in range(10)}, {}, batch_size=5, num_batches=2)
    (first, second) = small.generate(0)
    assert len(set(first + second)) == 10


def test_mixture_iterator_serves_speech_and_text_only_utterances(tiny_llm, tiny_whisper, tmp_path):
    """Through ESPnet's iterator factory: a data dir whose text translation examples have no wav.scp entry."""
    from conftest import write_data_dir
    from espnet2.train.distributed_utils import DistributedOption

    from csst_espnet.tasks.csst import CSSTTask

    data = write_data_dir(tmp_path / "train", [(f"a{i}", synth_utterance(i, 0.3), SENTENCES[i], "en", "asr")
                                               for i in range(4)])
    for name, extra in (("text", [f"m{i} {SENTENCES[i]}" for i in range(4)]),
                        ("utt2lang", [f"m{i} zh" for i in range(4)]),
                        ("utt2task", [f"m{i} mt" for i in range(4)]),
                        ("src_text", [f"{u} {SENTENCES[4 + i % 4]}" for i, u in enumerate(
                            [f"a{j}" for j in range(4)] + [f"m{j}" for j in range(4)])])):
        lines = ((data / name).read_text().splitlines() if (data / name).exists() else []) + extra
        (data / name).write_text("\n".join(sorted(lines)) + "\n")
    triples = [[str(data / "wav.scp"), "speech", "sound"], [str(data / "text"), "text", "text"],
               [str(data / "utt2lang"), "lang", "text"], [str(data / "utt2task"), "task", "text"],
               [str(data / "src_text"), "src_text", "text"]]
    args = _args(tiny_llm, tiny_whisper, "--data_mixture", "{tasks: {asr: 1, mt: 1}}", "--batch_size", "4",
                 "--num_iters_per_epoch", "3", "--num_workers", "0")
    args.train_data_path_and_name_and_type = triples
    args.train_shape_file = [str(data / "speech_shape")]
    factory = CSSTTask.build_iter_factory(args, DistributedOption(), mode="train")
    epochs = [[(keys, batch) for keys, batch in factory.build_iter(epoch)] for epoch in (1, 2)]
    again = [keys for keys, _ in CSSTTask.build_iter_factory(args, DistributedOption(), "train").build_iter(2)]
    assert [keys for keys, _ in epochs[1]] == again  # resume: the same batches
    rows = [(k, int(n)) for batches in epochs for keys, batch in batches for k, n in zip(keys, batch["speech_lengths"])]
    assert len(rows) == 24 and {k[0] for k, _ in rows} == {"a", "m"}
    assert all((n == 0) == k.startswith("m") for k, n in rows)
    # without a data mixture, ESPnet's samplers batch by speech shapes: text-only utterances are refused
    args.data_mixture = None
    with pytest.raises(ValueError, match=r"utt2task: 4 text-only training utterances \(e\.g\. m0.*data_mixture"):
        CSSTTask.build_iter_factory(args, DistributedOption(), "train")


# --------------------------------------------------------------------------------------------------
# three languages
# --------------------------------------------------------------------------------------------------


def _tone(seed, band, seconds=0.25):
    """A tone mixture in a frequency band: the toy 'language' of an utterance."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    wav = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(*band, size=3)) / 3
    return (0.3 * wav + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_three_languages_route_to_their_own_groups(tiny_llm, tiny_whisper):
    """zh, en, es speech (toy: a frequency band each), one MoE group per language, the language loss,
    the encoder trained (unfrozen from update 0): after 20 updates every language's tokens go to its group."""
    args = _args(tiny_llm, tiny_whisper, "--projector", "moe",
                 "--aux_losses", "[{name: lang, weight: 1.0}, {name: balance, weight: 0.01}]",
                 "--model_conf", "ce_weight=0", "--encoder_unfreeze", "[{step: 0, layers: all}]",
                 projector_conf="{groups: [zh, en, es], experts_per_group: 2, top_k: 2, downsample_rate: 2, "
                 "expert_hidden: 32}")
    model = _model(args)
    bands = {"zh": (150, 500), "en": (900, 1500), "es": (2200, 3500)}

    def batch(offset):
        return _batch(args, [(f"{lang}{offset + i}", {"speech": _tone(100 * offset + 10 * j + i, band), "lang": lang,
                                                       "text": SENTENCES[i], "task": "asr"})
                             for j, (lang, band) in enumerate(bands.items()) for i in range(2)])

    def accuracy():
        model.eval()
        with torch.no_grad():
            _, stats, _ = model(**batch(50))  # utterances never trained on
        model.train()
        return {lang: stats[f"lang_route_acc_{lang}"].item() for lang in bands}

    before = accuracy()
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    for step in range(20):
        _train(model, batch(step % 4), 1, optim)
    after = accuracy()
    assert min(before.values()) < 0.5 and min(after.values()) > 0.9, (before, after)


# --------------------------------------------------------------------------------------------------
# config validation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, message", [
    ("[{step: 0, layer: all}]", r"encoder_unfreeze\[0\]: unknown key\(s\) \['layer'\]"),
    ("[{step: -1, layers: all}]", r"encoder_unfreeze\[0\]\.step"),
    ("[{step: 0, layers: last 3}]", r"encoder_unfreeze\[0\]\.layers"),
    ("[{step: 0, layers: first 1}]", r"encoder_unfreeze\[0\]\.layers"),
    ("[{step: 5, layers: last 1}, {step: 2, layers: all}]", r"encoder_unfreeze\[1\]\.step"),
    ("[{step: 0, layers: all}, {step: 2, layers: last 1}]", r"encoder_unfreeze\[1\]\.layers"),
    ("{step: 0}", r"encoder_unfreeze must be a list"),
])
def test_encoder_unfreeze_errors_name_the_bad_key(tiny_llm, tiny_whisper, spec, message):
    with pytest.raises(ValueError, match=message):
        _model(_args(tiny_llm, tiny_whisper, "--encoder_unfreeze", spec))


def test_encoder_unfreeze_needs_a_frozen_encoder_without_lora(tiny_llm, tiny_whisper):
    spec = ["--encoder_unfreeze", "[{step: 0, layers: all}]"]
    with pytest.raises(ValueError, match="encoder_unfreeze needs a frozen encoder"):
        _model(_args(tiny_llm, tiny_whisper, *spec, "--encoder_conf", "freeze=false"))
    with pytest.raises(ValueError, match="encoder_unfreeze with encoder_conf.lora"):
        _model(_args(tiny_llm, tiny_whisper, *spec, "--encoder_conf", "{lora: {r: 2}}"))


@pytest.mark.parametrize("conf, message", [
    ({"temp": 2}, r"data_mixture: unknown key\(s\) \['temp'\]"),
    ({"tasks": {"asr": 0}}, r"data_mixture\.tasks\.asr must be a number > 0"),
    ({"tasks": {"asr": 1, "ast": 1}}, r"data_mixture\.tasks: no training utterance of task\(s\) \['ast'\]"),
    ({"temperature": 0}, r"data_mixture\.temperature must be a number > 0"),
    ({"languages": {"zh": -1}}, r"data_mixture\.languages\.zh"),
    ({"languages": {"zh": 1}, "temperature": 2}, r"languages \(fixed shares\) or temperature, not both"),
    ({"tasks": {"mt": 1}, "languages": {"zh": 1}}, r"data_mixture\.languages: no utterance of \['zh'\]"),
    ({"tasks": {"mt": 1}, "languages": {"es": 1, "zh": 1}}, r"data_mixture\.languages: no utterance of \['zh'\]"),
    ({"tasks": {"st": 1, "mt": 1}, "languages": {"zh": 1}}, r"data_mixture: no language to draw from"),
])
def test_data_mixture_errors_name_the_bad_key(conf, message):
    from csst_espnet.data.mixture import MixtureSampler

    with pytest.raises(ValueError, match=message):
        MixtureSampler(_labels(), conf, batch_size=4)


# --------------------------------------------------------------------------------------------------
# through csst_train: ESPnet's trainer, checkpoints, --resume, --init_param
# --------------------------------------------------------------------------------------------------


def test_training_run_unfreezes_on_schedule_across_resume_and_phases(tiny_llm, tiny_whisper, tiny_data, tmp_path):
    from transformers import WhisperModel

    from train_utils import tiny_config, train

    config = tiny_config(tiny_llm, tiny_whisper, tiny_data, max_epoch=1, num_iters_per_epoch=4, batch_size=2,
                         num_workers=0, train_llm_lora=False,
                         encoder_unfreeze=[{"step": 2, "layers": "last 1"}, {"step": 5, "layers": "all"}],
                         data_mixture={"tasks": {"st": 1}, "temperature": 2.0})
    exp = tmp_path / "phase_a"
    train(config, exp)
    train({**config, "max_epoch": 2}, exp, ["--resume", "true"])  # epoch 2 resumes from epoch 1's checkpoint
    first, second = (torch.load(exp / f"{n}epoch.pth") for n in (1, 2))
    pretrained = WhisperModel.from_pretrained(tiny_whisper).encoder.state_dict()

    def encoder(state, name):
        return state[f"encoder.encoder.{name}"]

    assert int(first["encoder_unfreeze.updates"]) == 4 and int(second["encoder_unfreeze.updates"]) == 8
    assert not torch.equal(encoder(first, "layers.1.fc1.weight"), pretrained["layers.1.fc1.weight"])  # from update 2
    assert torch.equal(encoder(first, "layers.0.fc1.weight"), pretrained["layers.0.fc1.weight"])  # not before 5
    assert not torch.equal(encoder(second, "layers.0.fc1.weight"), pretrained["layers.0.fc1.weight"])  # after resume
    lora_b = [k for k in second if "lora_B" in k]
    assert lora_b and all(not second[k].any() for k in lora_b)  # train_llm_lora false: as initialised (zero)

    # the next phase starts from phase a (--init_param) and counts its own updates from 0
    next_exp = tmp_path / "phase_b"
    train({**config, "num_iters_per_epoch": 1, "encoder_unfreeze": [{"step": 3, "layers": "all"}]}, next_exp,
          ["--init_param", str(exp / "2epoch.pth")])
    last = torch.load(next_exp / "1epoch.pth")
    assert int(last["encoder_unfreeze.updates"]) == 1
    assert torch.equal(encoder(last, "layers.0.fc1.weight"), encoder(second, "layers.0.fc1.weight"))  # frozen until 3


def test_deepspeed_refuses_encoder_unfreeze():
    """ESPnet's DeepSpeed trainer never calls on_update: the schedule would never advance."""
    from csst_espnet.tasks.csst import CSSTTask, deepspeed_problems

    parse = CSSTTask.get_parser().parse_args
    assert deepspeed_problems(parse([])) == []
    problems = deepspeed_problems(parse(["--encoder_unfreeze", "[{step: 0, layers: all}]"]))
    assert len(problems) == 1 and "encoder_unfreeze would never unfreeze" in problems[0]


def test_unfreezable_layers_train_in_float32_beside_a_bfloat16_frozen_encoder(tiny_llm, tiny_whisper):
    args = _args(tiny_llm, tiny_whisper, "--encoder_conf", "dtype=bfloat16",
                 "--encoder_unfreeze", "[{step: 0, layers: last 1}]")
    model = _model(args).to(dtype=torch.float32)  # ESPnet's --train_dtype cast keeps the frozen bf16 weights
    layers = model.encoder.encoder.layers
    assert layers[0].fc1.weight.dtype == torch.bfloat16 and not layers[0].fc1.weight.requires_grad
    assert layers[1].fc1.weight.dtype == torch.float32 and layers[1].fc1.weight.requires_grad
    before = _snapshot(model)
    _train(model, _batch(args, _speech_items(2)), 1, torch.optim.AdamW(model.parameters(), lr=0.01))
    changed = _changed(model, before)
    assert "encoder.encoder.layers.1.fc1.weight" in changed and not any(n.startswith("encoder.encoder.layers.0.") for n in changed)


def test_a_phase_without_an_auxiliary_loss_starts_from_a_model_with_it(tiny_llm, tiny_whisper):
    """--init_param of a previous phase whose frame-phone head this phase has not (its data has text-only
    examples without phone alignments): the head is left out, everything else loads (strictly)."""
    previous = _model(_args(tiny_llm, tiny_whisper, "--aux_losses", "[{name: frame_phone, weight: 1.0, conf: {num_phones: 16}}]"))
    params = {name for name, _ in previous.named_parameters()}
    state = {k: v + 0.5 if k in params else v for k, v in previous.state_dict().items()}  # not the model's own
    assert any(k.startswith("aux_losses.frame_phone.") for k in state)
    current = _model(_args(tiny_llm, tiny_whisper, "--aux_losses", "[{name: src_ctc, weight: 0.5}]"))
    missing, unexpected = current.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("aux_losses.src_ctc.") for k in missing)
    for key, value in current.state_dict().items():
        if not key.startswith("aux_losses."):
            assert torch.equal(value, state[key]), key
