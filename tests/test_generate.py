"""The one batched generation routine (csst_espnet.inference.generate) on the tiny pretrained LM."""

import pytest

from conftest import SENTENCES

from csst_espnet.inference.generate import GenerateOptions, generate, left_pad, pad_id


def test_left_pad():
    ids, mask = left_pad([[5, 6, 7], [8]], pad=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_left_padded_batch_decodes_as_each_prefix_alone(tiny_llm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llm).eval()
    tok = AutoTokenizer.from_pretrained(tiny_llm)
    heads = ["<s>we use gradient", "<s>注意力", "<s>the loss goes down after", "<s>这个 模型"]
    prefixes = [tok(h, add_special_tokens=False)["input_ids"] for h in heads]
    assert len({len(p) for p in prefixes}) > 1  # the batch is padded
    options = GenerateOptions(max_new_tokens=16)

    ids, mask = left_pad(prefixes, pad_id(tok))
    batched = generate(model, tok, mask, input_ids=ids, options=options)
    alone = [generate(model, tok, m, input_ids=i, options=options)[0]
             for i, m in (left_pad([p], pad_id(tok)) for p in prefixes)]
    assert [h.token_int for h in batched] == [h.token_int for h in alone]
    assert [h.text for h in batched] == [h.text for h in alone]
    assert [h.score for h in batched] == pytest.approx([h.score for h in alone], abs=1e-4)
    # the pretrained LM completes its sentences; hypotheses stop before EOS
    assert batched[0].text == "descent to train the model" and tok.eos_token_id not in batched[0].token_int
    assert all(h.text in " ".join(SENTENCES) and h.score < 0 for h in batched)

    # the same prefixes as embeddings decode the same way
    embeds = model.get_input_embeddings()(ids).detach()
    via_embeds = generate(model, tok, mask, inputs_embeds=embeds, options=options)
    assert [h.token_int for h in via_embeds] == [h.token_int for h in batched]
    assert [h.score for h in via_embeds] == pytest.approx([h.score for h in batched], abs=1e-4)

    with pytest.raises(ValueError, match="exactly one"):
        generate(model, tok, mask, options=options)


def _looping_lm(tok, cycle, eos_logit=2.0):
    """A one-layer Qwen2 whose attention and MLP add nothing: the next token depends only on the
    current one, ``cycle[i] -> cycle[i + 1]`` (and back to ``cycle[0]``): it loops forever, with EOS
    always the second choice."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    hidden = 16
    config = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        model.model.layers[0].self_attn.o_proj.weight.zero_()
        model.model.layers[0].mlp.down_proj.weight.zero_()
        emb = model.get_input_embeddings().weight
        emb.zero_()
        emb[:, 0] = 1.0  # every token not in the cycle: state 0
        head = model.lm_head.weight
        head.zero_()
        head[tok.eos_token_id] = eos_logit
        for i, t in enumerate(cycle):
            emb[t] = 0.0
            emb[t, i + 1] = 1.0
            head[cycle[(i + 1) % len(cycle)], i + 1] = 40.0
        head[cycle[0], 0] = 40.0
    return model


def _reference_logprobs(model, prefix, tokens):
    """Log-probabilities of ``tokens`` after ``prefix`` from one forward pass over both."""
    import torch

    ids = torch.tensor([prefix + tokens])
    logp = model(input_ids=ids).logits[0].float().log_softmax(-1)
    return [logp[len(prefix) - 1 + i, t].item() for i, t in enumerate(tokens)]


def test_guards_stop_a_looping_model_and_confidence_is_mean_logprob(tiny_llm):
    from transformers import AutoTokenizer

    from csst_espnet.inference.decode_dir import guard_counts

    tok = AutoTokenizer.from_pretrained(tiny_llm)
    a, b, c = (tok.convert_tokens_to_ids(t) for t in ("the", "Ġloss", "Ġgoes"))
    assert tok.unk_token_id not in (a, b, c)
    model = _looping_lm(tok, [a, b, c])
    prefix = tok("<s>we use", add_special_tokens=False)["input_ids"] + [a]
    ids, mask = left_pad([prefix, prefix[-2:]], pad_id(tok))

    # no guard but the hard cap: the loop runs until the cap
    unguarded = generate(model, tok, mask, input_ids=ids, options=GenerateOptions(max_new_tokens=20))
    assert [len(h.token_int) for h in unguarded] == [20, 20]
    assert unguarded[0].token_int[:6] == [b, c, a, b, c, a]
    assert [h.guard for h in unguarded] == ["length", "length"]
    # per-row length limits (Speech2Text's length guard)
    limited = generate(model, tok, mask, input_ids=ids, options=GenerateOptions(max_new_tokens=20),
                       max_new_tokens=[5, 30])
    assert [len(h.token_int) for h in limited] == [5, 20]
    # the loop guard: the hypothesis ends with EOS instead of saying "b c a" a second (third) time in a row
    for beam, repeats in ((1, 2), (3, 2), (1, 3)):
        looped = generate(model, tok, mask, input_ids=ids,
                          options=GenerateOptions(beam_size=beam, max_new_tokens=20, loop_repeats=repeats))
        assert [h.token_int for h in looped] == [([b, c, a] * repeats)[:-1]] * 2, (beam, repeats)
        assert [h.guard for h in looped] == ["loop", "loop"]
        assert guard_counts(looped + unguarded[:1]) == {"length": 1, "loop": 2}
        # confidence: the mean of the model's own log-probabilities of the tokens and the EOS
        for h, p in zip(looped, [prefix, prefix[-2:]]):
            ref = _reference_logprobs(model, p, h.token_int + [tok.eos_token_id])
            assert ref[-1] < -30  # the model never wanted to stop: the guard did
            assert h.confidence == pytest.approx(sum(ref) / len(ref), abs=1e-4)
    # cut by the length guard: no EOS in the mean
    ref = _reference_logprobs(model, prefix, limited[0].token_int)
    assert limited[0].confidence == pytest.approx(sum(ref) / len(ref), abs=1e-4)


def test_lora_merged_for_decoding_gives_the_adapters_logits_and_hypotheses(tiny_llm):
    """``HFCausalLM.merge_lora`` (what Speech2Text decodes with): the logits of the LM with its LoRA
    adapters to 1e-5, the same greedy and beam hypotheses; a bfloat16 LM keeps its adapters."""
    import torch
    from transformers import AutoTokenizer

    from csst_espnet.llm.hf_causal_lm import HFCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_llm)
    lora = {"r": 4, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
    llm = HFCausalLM(model_name_or_path=str(tiny_llm), lora=lora).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in llm.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)  # trained adapters (LoRA B starts at zero)
    heads = ["<s>we use gradient", "<s>注意力", "<s>the loss goes down after"]
    ids, mask = left_pad([tok(h, add_special_tokens=False)["input_ids"] for h in heads], pad_id(tok))
    embeds = llm.embed(ids).detach()
    runs = []
    for merge in (False, True):
        if merge:
            assert llm.merge_lora() and not any("lora_" in n for n, _ in llm.named_parameters())
        with torch.no_grad():
            logits = llm(embeds, mask)
        hyps = [generate(llm.model, tok, mask, inputs_embeds=embeds, options=GenerateOptions(beam_size=k, max_new_tokens=12))
                for k in (1, 3)]
        runs.append((logits, hyps))
    (ref, ref_hyps), (merged, merged_hyps) = runs
    valid = mask.bool()
    assert torch.allclose(merged[valid], ref[valid], atol=1e-5, rtol=0)
    for a, b in zip(merged_hyps, ref_hyps):
        assert [h.token_int for h in a] == [h.token_int for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)
    assert not HFCausalLM(model_name_or_path=str(tiny_llm), lora=lora, dtype="bfloat16").merge_lora()


def test_loop_guard_stops_back_to_back_repeats_only():
    from csst_espnet.inference.generate import loop_banned

    we_use, model_, x, y = [1, 2], 3, 4, 5
    # a phrase that comes back later (a long translation) is not a loop: "model" may follow it again;
    # only saying its last token twice in a row would be
    assert loop_banned(we_use + [model_, x, y] + we_use, 2) == {we_use[-1]}
    assert loop_banned(we_use + [model_, x, y] + we_use, 3) == set()
    # "x y x" + y would say "x y" twice in a row (+ x: "x" twice); "y x x" + x: "x" thrice
    assert loop_banned([x, y, x], 2) == {x, y}
    assert loop_banned([x, y, x], 3) == set()
    assert loop_banned([y, x, x], 3) == {x}
    assert loop_banned([y, x, x], 2) == {x}
    assert loop_banned([x, y, model_, x, y], 2) == {y, model_}
    assert loop_banned([x, y, model_, x, y], 0) == set()
    assert loop_banned([], 2) == set()

