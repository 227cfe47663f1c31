"""The rows of mini_cs's comparison table (egs2/mini_cs/st1/conf/table/*.yaml) and the ablations' configs.

Every row loads (csst_espnet/recipe/table.py), names csst.sh options that exist and config files that
exist in both presets, has its own experiment, and no experiment name is ever trained by two rows from
different configs or different initial models (rows share experiments only where they are the same run,
e.g. the full method's phases 1-2 under the transition ablations). Then the ablations' models and losses
do what the rows say.
"""

import re
from pathlib import Path
from typing import Dict, Optional, Tuple

import pytest
import torch

from csst_espnet.losses.abs_aux_loss import AuxLossInputs
from csst_espnet.losses.registry import AUX_LOSSES
from csst_espnet.projector.moe import MoESpeechProjector
from csst_espnet.recipe import table
from csst_espnet.utils.config import load_config

REPO = Path(__file__).resolve().parents[1]
ST1 = REPO / "egs2" / "mini_cs" / "st1"
ROWS = ST1 / "conf" / "table"
ROW_NAMES = sorted(p.stem for p in ROWS.glob("*.yaml"))
CSST_SH = (REPO / "egs2" / "TEMPLATE" / "csst1" / "csst.sh").read_text()
ABLATIONS = ("no_lang", "global_balance", "no_transition", "mixture", "no_phase1", "no_phase2", "experts1",
             "experts4", "top1")


def experiments(row: table.Row, conf: str) -> Tuple[Dict[str, tuple], Optional[str]]:
    """The experiments the row's train stages write, each with what makes it (config, initial model's
    identity), as csst.sh names them (run.sh's config defaults); and the experiment it decodes."""
    o = dict(table.BASE_OPTIONS, **row.options)
    phases = o["train_phases"].split()
    cfg = {p: o.get(f"phase{p}_config", f"{conf}/train_phase{p}.yaml") for p in "123"}
    tag = {p: o.get(f"phase{p}_tag") or f"csst_{Path(cfg[p]).stem}" for p in "123"}
    ident = {"1": (cfg["1"], o.get("phase1_init_param", ""))}
    ident["2"] = (cfg["2"], ident["1"] if o.get("phase2_init_phase", "1") == "1" else None)
    ident["3"] = (cfg["3"], {"0": None, "1": ident["1"], "2": ident["2"]}[o.get("phase3_init_phase", "2")])
    out = {}
    for stage, p in ((10, "1"), (11, "2"), (12, "3")):
        if stage in row.train and p in phases:
            out[tag[p]] = ident[p]
    decoded = tag[o["decode_phases"]] if o["decode_phases"] else None
    if 12 in row.train and o["cs_only_baseline"] == "true":
        config = o.get("cs_only_config", f"{conf}/train_cs_only.yaml")
        decoded = f"csst_{Path(config).stem}"
        out[decoded] = (config, o.get("cs_only_train_sets"))
    if 12 in row.train and o["baselines"] == "espnet_st":
        decoded = Path(o.get("espnet_st_config", f"{conf}/espnet_st.yaml")).stem
        out[decoded] = ("espnet_st", o.get("espnet_st_config"))
    return out, decoded


@pytest.mark.parametrize("conf", ["conf", "conf/tiny"])
def test_rows_resolve_and_never_share_an_experiment(conf):
    assert set(ABLATIONS) <= set(ROW_NAMES)
    made_by: Dict[str, tuple] = {}
    exps = {}
    for name in ROW_NAMES:
        row = table.load_row(str(ROWS), name, conf)
        for key, value in row.options.items():
            assert re.search(rf"^{key}=", CSST_SH, re.M), f"{name}.yaml: '{key}' is no csst.sh option"
            if value.endswith(".yaml"):
                assert (ST1 / value).is_file(), f"{name}.yaml: {key} {value} does not exist"
        trained, decoded = experiments(row, conf)
        assert decoded == row.exp and row.exp in trained, f"{name}.yaml: exp {row.exp}, trains {sorted(trained)}"
        for exp, ident in trained.items():
            assert made_by.setdefault(exp, ident) == ident, f"{exp} is trained differently by two rows ({name})"
        assert row.exp not in exps, f"rows {exps.get(row.exp)} and {name} both decode {row.exp}"
        exps[row.exp] = name
        for config in {c for c, *_ in trained.values() if c.endswith(".yaml")}:
            load_config(str(ST1 / config))  # composes (model_config exists, nothing repeated)


def test_rows_of_the_cs_only_mechanism_prepare_their_own_data():
    """The demo's run.sh does not train the CS-only baseline, so it never makes dump/raw/train_cs_only:
    every row that trains through that mechanism makes its data (stage 4) and shapes (stage 9) itself."""
    run_sh = (ST1 / "run.sh").read_text()
    assert re.search(r"demo\) conf=conf; cs_only=false", run_sh)
    for name in ROW_NAMES:
        row = table.load_row(str(ROWS), name, "conf")
        if row.options.get("cs_only_baseline") == "true":
            assert {4, 9} <= set(row.prepare), f"{name}.yaml trains the CS-only mechanism without preparing 4 and 9"


@pytest.mark.parametrize("conf", ["conf", "conf/tiny"])
def test_baselines_get_at_least_the_full_methods_updates(conf):
    """A baseline row trains for at least as many optimiser updates as the full method's three phases."""
    def updates(config: str) -> int:
        c = load_config(str(ST1 / config))
        return c["max_epoch"] * c["num_iters_per_epoch"]

    full = sum(updates(f"{conf}/train_phase{p}.yaml") for p in "123")
    for name in ("cs_only", "single_stage", "mlp", "espnet_st"):
        trained, _ = experiments(table.load_row(str(ROWS), name, conf), conf)
        # an experiment's identity is (config, ...), ESPnet's ("espnet_st", its config or None: the default)
        configs = [(ident[1] or f"{conf}/espnet_st.yaml") if ident[0] == "espnet_st" else ident[0]
                   for ident in trained.values()]
        assert sum(updates(c) for c in configs) >= full, f"{name}: {configs} train fewer updates than the method ({full})"


def _phase_configs(conf: str, row: str) -> Dict[str, dict]:
    o = table.load_row(str(ROWS), row, conf).options
    return {p: load_config(str(ST1 / o.get(f"phase{p}_config", f"{conf}/train_phase{p}.yaml"))) for p in "123"}


def _losses(config: dict) -> Dict[str, dict]:
    return {spec["name"]: spec for spec in config.get("aux_losses") or []}


@pytest.mark.parametrize("conf", ["conf", "conf/tiny"])
def test_each_ablation_changes_what_it_says_and_nothing_else(conf):
    """Each row's phase configs differ from the full method's by its change (and, for the rows that drop
    a phase, the dropped phase's updates and schedule)."""
    full = _phase_configs(conf, "full")

    def diff(a: dict, b: dict) -> set:
        return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}

    for p in "123":
        no_lang = _phase_configs(conf, "no_lang")[p]
        assert "lang" not in _losses(no_lang) and diff(no_lang, full[p]) == {"aux_losses"}
        glob = _phase_configs(conf, "global_balance")[p]
        assert _losses(glob)["global_balance"]["weight"] == _losses(full[p])["balance"]["weight"]
        assert "balance" not in _losses(glob) and diff(glob, full[p]) == {"aux_losses"}
        for row, key, value in (("experts1", "experts_per_group", 1), ("experts4", "experts_per_group", 4),
                                ("top1", "top_k", 1)):
            c = _phase_configs(conf, row)[p]
            assert diff(c, full[p]) == {"projector_conf"}
            assert diff(c["projector_conf"], full[p]["projector_conf"]) == {key} and c["projector_conf"][key] == value
    for row in ("no_transition", "no_phase2"):
        c = _phase_configs(conf, row)["3"]
        assert "transition" not in _losses(c) and c["model_conf"]["ce_weight"] == 1.0
        assert set(_losses(c)) == set(_losses(full["3"])) - {"transition"}
    mixture = _phase_configs(conf, "mixture")["3"]
    assert _losses(mixture)["transition"]["conf"].get("mode", "mixture") == "mixture"
    assert mixture["model_conf"]["ce_weight"] == 0.0

    def updates(c: dict) -> int:
        return c["max_epoch"] * c["num_iters_per_epoch"]

    no_p1, no_p2 = _phase_configs(conf, "no_phase1")["2"], _phase_configs(conf, "no_phase2")["3"]
    assert updates(no_p1) == updates(full["1"]) + updates(full["2"])
    assert no_p1["optim_conf"] == full["1"]["optim_conf"] and no_p1["scheduler_conf"] == full["1"]["scheduler_conf"]
    assert updates(no_p2) == updates(full["2"]) + updates(full["3"])


@pytest.mark.parametrize("variant,experts_per_token,experts", [("experts1", 2, 2), ("experts4", 2, 8), ("top1", 1, 4)])
def test_model_variants_route_as_named(variant, experts_per_token, experts):
    """The tiny preset's model variants, built: top-1 sends each token to exactly one expert; experts1 has
    one expert per group (with top-2, every token reaches both); experts4 four per group."""
    conf = load_config(str(ST1 / "conf" / "tiny" / f"model_{variant}.yaml"))["projector_conf"]
    torch.manual_seed(0)
    projector = MoESpeechProjector(input_size=8, output_size=16, **conf).eval()
    assert projector.num_experts == experts and projector.experts_per_group == experts // 2
    xs = torch.randn(3, 40, 8)
    out, lens, aux = projector(xs, torch.tensor([40, 33, 20]))
    index = aux["expert_index"]  # (L, N, k)
    assert index.shape == (1, int(lens.sum()), experts_per_token)
    assert (index.sort(-1).values.diff(dim=-1) > 0).all()  # k distinct experts per token
    assert out.shape == (3, 10, 16)


def test_intra_group_balance_of_one_expert_per_group_is_constant():
    """experts1 keeps the balance loss of the full method: with one expert per group it is 1 whatever the
    router does (nothing to balance), so the row changes the experts alone."""
    conf = load_config(str(ST1 / "conf" / "tiny" / "model_experts1.yaml"))["projector_conf"]
    projector = MoESpeechProjector(input_size=8, output_size=16, **conf)
    balance = AUX_LOSSES["balance"](projector, ["zh", "en", "cs"])
    _, _, aux = projector(torch.randn(2, 24, 8), torch.tensor([24, 16]))
    loss, _ = balance(AuxLossInputs(projector_aux=aux, lang=torch.tensor([0, 1]), languages=["zh", "en", "cs"]))
    assert torch.allclose(loss, torch.tensor(1.0))
