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
