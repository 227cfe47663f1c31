"""Routing losses: hand-computed values, the language loss on a toy problem, errors, and data
parallelism (2 gloo processes): global balance statistics and idle experts under DDP."""

import math
import os

import pytest
import torch

from csst_espnet.losses.abs_aux_loss import AuxLossInputs
from csst_espnet.losses.registry import AUX_LOSSES, build_aux_losses
from csst_espnet.losses.routing import GlobalBalanceLoss, IntraGroupBalanceLoss, LanguageLoss, RouterZLoss
from csst_espnet.projector.moe import MoESpeechProjector

LANGUAGES = ("zh", "en", "es", "cs")
GROUPS = ["zh", "en"]
N_PER_GROUP = 2  # experts e = g * 2 + j: zh -> 0, 1; en -> 2, 3




class FakeProjector:
    groups = GROUPS
    experts_per_group = N_PER_GROUP


def example(layers=2, seed=0):
    """4 utterances (zh, en, cs, unknown) with 3, 2, 3, 2 tokens; 4 experts, top-2."""
    g = torch.Generator().manual_seed(seed)
    token_utt = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3, 3])
    logits = 2 * torch.randn(layers, len(token_utt), 4, generator=g)
    index = torch.topk(logits, 2, dim=-1).indices
    lang = torch.tensor([0, 1, 3, -1])  # zh, en, cs, unknown
    aux = {"router_logits": logits, "expert_index": index, "token_utt": token_utt}
    return aux, lang


def inputs(aux, lang):
    return AuxLossInputs(projector_aux=aux, lang=lang, languages=LANGUAGES)


# --------------------------------------------------------------------------------------------------
# hand-computed references (explicit loops over python floats)
# --------------------------------------------------------------------------------------------------


def _probs(row):
    z = [math.exp(v) for v in row]
    return [v / sum(z) for v in z]


def _label(aux, lang, t):
    """Group of token t's label, or None (cs / unknown)."""
    name_id = int(lang[int(aux["token_utt"][t])])
    if name_id < 0 or LANGUAGES[name_id] == "cs":
        return None
    return GROUPS.index(LANGUAGES[name_id])


def hand_language_loss(aux, lang):
    terms = []
    for layer in aux["router_logits"].tolist():
        for t, row in enumerate(layer):
            g = _label(aux, lang, t)
            if g is None:
                continue
            p = _probs(row)
            terms.append(-math.log(sum(p[g * N_PER_GROUP + j] for j in range(N_PER_GROUP))))
    return sum(terms) / len(terms)


def hand_balance_loss(aux, lang, token_set):
    layer_values = []
    for layer, (logit_rows, index_rows) in enumerate(
        zip(aux["router_logits"].tolist(), aux["expert_index"].tolist())
    ):
        group_values = []
        for g in range(len(GROUPS)):
            members = []
            for t in range(len(logit_rows)):
                reaches = any(e // N_PER_GROUP == g for e in index_rows[t])
                label = _label(aux, lang, t)
                if token_set == "dispatched":
                    ok = reaches
                elif token_set == "label":
                    ok = label == g
                else:
                    ok = (label == g) if label is not None else reaches
                if ok:
                    members.append(t)
            if not members:
                continue
            counts = [0] * N_PER_GROUP
            p_sum = [0.0] * N_PER_GROUP
            for t in members:
                for e in index_rows[t]:
                    if e // N_PER_GROUP == g:
                        counts[e % N_PER_GROUP] += 1
                p = _probs(logit_rows[t])
                mass = sum(p[g * N_PER_GROUP + j] for j in range(N_PER_GROUP))
                for j in range(N_PER_GROUP):
                    p_sum[j] += p[g * N_PER_GROUP + j] / mass
            total = sum(counts)
            f = [c / total if total else 0.0 for c in counts]
            pm = [s / len(members) for s in p_sum]
            group_values.append(N_PER_GROUP * sum(f[j] * pm[j] for j in range(N_PER_GROUP)))
        layer_values.append(sum(group_values) / len(group_values))
    return sum(layer_values) / len(layer_values)


def hand_global_balance(aux):
    values = []
    for logit_rows, index_rows in zip(aux["router_logits"].tolist(), aux["expert_index"].tolist()):
        E = len(logit_rows[0])
        counts = [0] * E
        p_sum = [0.0] * E
        for row, chosen in zip(logit_rows, index_rows):
            for e in chosen:
                counts[e] += 1
            for e, p in enumerate(_probs(row)):
                p_sum[e] += p
        values.append(E * sum(counts[e] / sum(counts) * p_sum[e] / len(logit_rows) for e in range(E)))
    return sum(values) / len(values)


def hand_z_loss(aux):
    terms = [math.log(sum(math.exp(v) for v in row)) ** 2 for layer in aux["router_logits"].tolist() for row in layer]
    return sum(terms) / len(terms)


# --------------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------------


def test_language_loss_matches_hand_computation():
    aux, lang = example()
    loss, stats = LanguageLoss(FakeProjector(), LANGUAGES)(inputs(aux, lang))
    assert loss.item() == pytest.approx(hand_language_loss(aux, lang), rel=1e-5)
    assert stats["loss_lang"].item() == pytest.approx(loss.item())


@pytest.mark.parametrize("token_set", ["label_or_dispatched", "label", "dispatched"])
def test_intra_group_balance_matches_hand_computation(token_set):
    aux, lang = example()
    loss, _ = IntraGroupBalanceLoss(FakeProjector(), LANGUAGES, token_set=token_set)(inputs(aux, lang))
    assert loss.item() == pytest.approx(hand_balance_loss(aux, lang, token_set), rel=1e-5)


def test_balance_is_one_when_uniform_inside_groups():
    # Equal logits inside each group and one dispatch per expert of the group: n * sum_j (1/n)(1/n) = 1.
    logits = torch.tensor([[[0.0, 0.0, -1.0, -1.0], [0.0, 0.0, -1.0, -1.0]]])
    index = torch.tensor([[[0, 2], [1, 3]]])
    aux = {"router_logits": logits, "expert_index": index, "token_utt": torch.tensor([0, 1])}
    loss, _ = IntraGroupBalanceLoss(FakeProjector(), LANGUAGES, token_set="dispatched")(inputs(aux, None))
    assert loss.item() == pytest.approx(1.0)


def test_global_balance_and_z_loss_match_hand_computation():
    aux, lang = example()
    loss, _ = GlobalBalanceLoss(FakeProjector(), LANGUAGES)(inputs(aux, lang))
    assert loss.item() == pytest.approx(hand_global_balance(aux), rel=1e-5)
    loss, _ = RouterZLoss(FakeProjector(), LANGUAGES)(inputs(aux, lang))
    assert loss.item() == pytest.approx(hand_z_loss(aux), rel=1e-5)


def test_routing_stats():
    aux, lang = example(layers=1)
    _, stats = LanguageLoss(FakeProjector(), LANGUAGES, stat_prefix="lang")(inputs(aux, lang))
    top1 = aux["expert_index"][0, :, 0].tolist()
    assert stats["lang_route_acc_zh"].item() == pytest.approx(sum(e < 2 for e in top1[:3]) / 3)
    assert stats["lang_route_acc_en"].item() == pytest.approx(sum(e >= 2 for e in top1[3:5]) / 2)
    flat = aux["expert_index"][0].reshape(-1).tolist()
    for e in range(4):
        assert stats[f"lang_load_e{e}"].item() == pytest.approx(flat.count(e) / len(flat))
    entropy = sum(-sum(p * math.log(p) for p in _probs(row)) for row in aux["router_logits"][0].tolist()) / 10
    assert stats["lang_entropy"].item() == pytest.approx(entropy, rel=1e-5)
    # The key set is fixed (ESPnet all-reduces stats by key): absent languages give NaN.
    _, stats_cs = LanguageLoss(FakeProjector(), LANGUAGES, stat_prefix="lang")(
        inputs(aux, torch.tensor([3, 3, 3, 3]))
    )
    assert stats_cs.keys() == stats.keys() and math.isnan(stats_cs["lang_route_acc_zh"].item())


def test_code_switch_and_unknown_are_excluded():
    aux, _ = example()
    loss, _ = LanguageLoss(FakeProjector(), LANGUAGES)(inputs(aux, torch.tensor([3, 3, -1, -1])))
    assert loss.item() == 0.0
    loss, _ = LanguageLoss(FakeProjector(), LANGUAGES)(inputs(aux, None))
    assert loss.item() == 0.0


def test_frame_level_labels_override_utterance_labels():
    aux, lang = example(layers=1)
    token_lang = torch.tensor([0, 0, 0, 1, 1, 0, 1, -1, 3, 3])  # labels inside the cs utterance
    aux_frames = dict(aux, token_lang=token_lang)
    loss, _ = LanguageLoss(FakeProjector(), LANGUAGES)(inputs(aux_frames, lang))
    terms = []
    for t, row in enumerate(aux["router_logits"][0].tolist()):
        if int(token_lang[t]) in (0, 1):
            g = int(token_lang[t])
            terms.append(-math.log(sum(_probs(row)[g * 2 + j] for j in range(2))))
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)



@pytest.mark.parametrize("hook", [LanguageLoss, IntraGroupBalanceLoss, GlobalBalanceLoss, RouterZLoss])
def test_frame_labelled_stat_is_the_share_of_labelled_tokens_from_frames(hook):
    aux, lang = example(layers=1)
    token_lang = torch.tensor([0, 0, 0, 1, 1, 0, 1, -1, 3, 3])  # utterance 2 (cs) labelled by its frames
    framed = torch.tensor([False] * 5 + [True] * 3 + [False] * 2)
    loss_fn = hook(FakeProjector(), LANGUAGES, stat_prefix="p")
    _, stats = loss_fn(inputs(dict(aux, token_lang=token_lang, token_frame_labelled=framed), lang))
    assert stats["p_frame_labelled"].item() == pytest.approx(2 / 7)  # tokens 5, 6 of the 7 labelled
    _, utterance_only = loss_fn(inputs(aux, lang))  # no frame labels: 0, the same keys
    assert utterance_only["p_frame_labelled"].item() == 0.0 and utterance_only.keys() == stats.keys()
    _, none = loss_fn(inputs(aux, torch.tensor([3, 3, 3, -1])))  # no labelled token: NaN
    assert math.isnan(none["p_frame_labelled"].item())


def test_unknown_language_label_raises_naming_it():
    aux, _ = example()
    for hook in (LanguageLoss, IntraGroupBalanceLoss):
        with pytest.raises(ValueError, match=r"'es'.*\['zh', 'en'\]"):
            hook(FakeProjector(), LANGUAGES)(inputs(aux, torch.tensor([0, 2, 3, -1])))
    # A configured but absent language is fine.
    LanguageLoss(FakeProjector(), LANGUAGES)(inputs(aux, torch.tensor([0, 1, 3, -1])))


def test_registry():
    projector = FakeProjector()
    hooks, weights = build_aux_losses(
        [{"name": "lang", "weight": 0.1}, {"name": "balance", "weight": 0.01, "conf": {"token_set": "label"}}],
        projector,
        LANGUAGES,
    )
    assert isinstance(hooks, torch.nn.ModuleDict) and list(hooks) == ["lang", "balance"]
    assert weights == {"lang": 0.1, "balance": 0.01}
    assert hooks["balance"].token_set == "label"
    assert {"lang", "balance", "global_balance", "z_loss"} <= set(AUX_LOSSES)
    with pytest.raises(ValueError, match="unknown aux loss 'bogus'") as error:
        build_aux_losses([{"name": "bogus"}], projector, LANGUAGES)
    assert all(name in str(error.value) for name in AUX_LOSSES)  # the message lists the known names
    with pytest.raises(ValueError, match="token_set"):
        build_aux_losses([{"name": "balance", "conf": {"token_set": "x"}}], projector, LANGUAGES)
    with pytest.raises(ValueError, match="twice"):
        build_aux_losses([{"name": "lang"}, {"name": "lang"}], projector, LANGUAGES)
    # Hooks keep plain values, not the projector (whose parameters would be duplicated).
    real = MoESpeechProjector(8, 16, groups=GROUPS, experts_per_group=2, expert_hidden=8, downsample_rate=1)
    hooks, _ = build_aux_losses([{"name": "balance"}], real, LANGUAGES)
    assert len(list(hooks.parameters())) == 0


# --------------------------------------------------------------------------------------------------
# the language loss routes languages into their groups (toy problem)
# --------------------------------------------------------------------------------------------------


def test_language_loss_drives_routing_to_the_right_group():
    torch.manual_seed(0)
    dim, steps, bar = 16, 60, 0.95
    projector = MoESpeechProjector(
        dim, 32, groups=GROUPS, experts_per_group=2, top_k=2, downsample_rate=2, expert_hidden=16
    )
    loss_fn = LanguageLoss(projector, LANGUAGES)
    direction = torch.randn(dim)  # zh frames lean +direction, en frames -direction

    def make_batch(n=8, frames=12):
        lang = torch.randint(0, 2, (n,))  # 0 zh, 1 en
        sign = 1.0 - 2.0 * lang.float()
        xs = torch.randn(n, frames, dim) + 1.5 * sign.view(n, 1, 1) * direction
        lens = torch.randint(4, frames + 1, (n,))
        return xs, lens, lang

    def accuracy():
        xs, lens, lang = make_batch(64)
        with torch.no_grad():
            _, _, aux = projector(xs, lens)
            _, stats = loss_fn(inputs(aux, lang))
        return min(stats["lang_route_acc_zh"].item(), stats["lang_route_acc_en"].item())

    before = accuracy()
    optim = torch.optim.Adam(projector.parameters(), lr=0.05)
    for _ in range(steps):
        xs, lens, lang = make_batch()
        _, _, aux = projector(xs, lens)
        loss, _ = loss_fn(inputs(aux, lang))
        optim.zero_grad()
        loss.backward()
        optim.step()
    after = accuracy()
    assert after > bar, f"group routing accuracy {after:.3f} (before training {before:.3f}) <= {bar}"


# --------------------------------------------------------------------------------------------------
# data parallelism: 2 gloo processes
# --------------------------------------------------------------------------------------------------

SHARDS = {0: [0, 1, 2, 3, 4, 5, 6, 7], 1: [8, 9]}  # token rows per rank: utterances 0-2 and 3 (unequal)


def _ddp_worker(rank, world_size, init_file, out_dir):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        results = {}
        # (a) balance losses on this rank's shard of the example.
        aux, lang = example()
        rows = torch.tensor(SHARDS[rank])
        utts = aux["token_utt"][rows].unique()
        for key, hook in _balance_hooks().items():
            logits = aux["router_logits"][:, rows].clone().requires_grad_(True)
            local_aux = {
                "router_logits": logits,
                "expert_index": aux["expert_index"][:, rows],
                "token_utt": aux["token_utt"][rows] - int(utts.min()),
            }
            loss, _ = hook(inputs(local_aux, lang[utts]))
            loss.backward()
            results[key] = (loss.detach(), logits.grad)

        # (b) a DDP-wrapped projector where expert 3 never gets a token.
        torch.manual_seed(0)
        projector = MoESpeechProjector(
            8, 16, groups=GROUPS, experts_per_group=2, top_k=1, downsample_rate=1, expert_hidden=16
        )
        with torch.no_grad():
            projector.layers[0].router.weight[3] = -100.0  # inputs are positive: expert 3 is never chosen
        ddp = DistributedDataParallel(projector)  # find_unused_parameters=False: stacked expert weights
        balance = IntraGroupBalanceLoss(projector, LANGUAGES)
        g = torch.Generator().manual_seed(10 + rank)
        for _ in range(2):  # two steps: the reducer must be ready again after the first
            xs = torch.rand(2, 5, 8, generator=g) + 0.1
            ys, lens, p_aux = ddp(xs, torch.tensor([5, 3]))
            loss = ys.pow(2).mean() + balance(inputs(p_aux, torch.tensor([0, 1])))[0]
            ddp.zero_grad()
            loss.backward()
        results["ddp_chosen"] = p_aux["expert_index"].unique()
        results["ddp_grads"] = {n: q.grad.clone() for n, q in projector.named_parameters()}
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _balance_hooks():
    hooks = {
        mode: IntraGroupBalanceLoss(FakeProjector(), LANGUAGES, token_set=mode)
        for mode in ("label_or_dispatched", "label", "dispatched")
    }
    hooks["global"] = GlobalBalanceLoss(FakeProjector(), LANGUAGES)
    return hooks


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    torch.multiprocessing.start_processes(
        _ddp_worker, args=(2, str(out / "init"), str(out)), nprocs=2, join=True, start_method="fork"
    )
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


def test_balance_with_two_ranks_equals_single_process(two_ranks):
    aux, lang = example()
    for key, hook in _balance_hooks().items():
        logits = aux["router_logits"].clone().requires_grad_(True)
        loss, _ = hook(inputs(dict(aux, router_logits=logits), lang))
        loss.backward()
        for rank, result in enumerate(two_ranks):
            value, grad = result[key]
            assert value.item() == pytest.approx(loss.item(), rel=1e-6), (key, rank)
            # Each rank's gradient is the single-process gradient on its own tokens (the model rescales
            # hooks with reduces_across_ranks so that DDP's averaging sums these).
            torch.testing.assert_close(grad, logits.grad[:, SHARDS[rank]], msg=f"{key} rank {rank}")
        assert hook.reduces_across_ranks


def test_idle_experts_do_not_break_ddp(two_ranks):
    for result in two_ranks:
        assert 3 not in result["ddp_chosen"].tolist()
    grads0, grads1 = two_ranks[0]["ddp_grads"], two_ranks[1]["ddp_grads"]
    for name in grads0:  # DDP averaged every gradient
        torch.testing.assert_close(grads0[name], grads1[name], msg=name)
    assert grads0["layers.0.experts.w_in"][3].abs().sum() == 0
    assert grads0["layers.0.experts.w_in"][:3].abs().sum() > 0
