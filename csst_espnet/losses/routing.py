"""Routing losses of the MoE speech projector (docs/architecture.md §2), each an auxiliary-loss hook.

Every hook is built as ``Cls(projector=<the projector>, languages=<task languages>, **conf)`` and reads
the projector's aux dict (see ``MoESpeechProjector``): ``router_logits (L, N, E)``,
``expert_index (L, N, k)``, ``token_utt (N,)`` and optionally ``token_lang (N,)``.  Only the valid
(non-padding) tokens are in these tensors, so padding never counts.  Every loss is averaged over the
L MoE layers.

Notation: router probabilities pi_t over experts e = (g, j) = g * n + j, group mass
P_t(g) = sum_j pi_t(g, j), K_t the chosen top-k set of token t.

Token language labels: a token's label is its utterance's language ``languages[lang[b]]``, or
``token_lang`` when the model provides it: with frame language labels in the data (``lang_ali``) the
tokens of code-switched utterances take the language of their frames, the tokens of monolingual
utterances keep the utterance's (``ESPnetCSSTModel._with_frame_languages``; ``token_frame_labelled``
marks the former).  "cs" (code-switch) and -1 mean "no label".  A label that is neither a projector
group nor "cs" is a configuration error (ValueError).

Stats: every hook reports its value as ``loss_<stat_prefix>`` (prefix default: its registry name) and, unless
``routing_stats: false``, routing statistics under the same prefix, averaged over layers:
``<prefix>_route_acc_<lang>`` share of the language's labelled tokens whose top-1 expert is in its group
(NaN when the batch has none), ``<prefix>_load_e<i>`` share of all dispatches going to expert i,
``<prefix>_entropy`` mean router entropy (nats), ``<prefix>_frame_labelled`` share of the labelled
tokens whose label comes from frame labels (0 with utterance labels only; NaN when the batch has no
labelled token).  The key set is fixed, so ESPnet can all-reduce it.

Data parallelism: the balance losses all-reduce their statistics as sums and counts (never means), so
every process computes the loss value of the global batch; gradients flow only through each
process's own tokens.  They set ``reduces_across_ranks = True``, which tells the model
(``ESPnetCSSTModel._aux_loss``) to rescale their gradient by global/local batch size, undoing the
per-rank weighting of ESPnet's trainer + DDP, so the summed gradient equals that of one process on
the global batch.  With world size 1 or without torch.distributed this is the plain formula.
The language and z losses are per-rank means, like CE.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

from csst_espnet.losses.abs_aux_loss import AbsAuxLoss, AuxLossInputs

CODE_SWITCH = "cs"
TOKEN_SETS = ("label_or_dispatched", "label", "dispatched")


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of a detached tensor over all processes (itself with world size 1 / no distributed)."""
    t = t.detach().clone()
    if _world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def with_local_grad(total: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """Value: ``total`` (the all-reduced sum of ``local``); gradient: flows to ``local`` only."""
    if _world_size() == 1:
        return local
    return total.view_as(local) + (local - local.detach())


def group_of_language(languages: Sequence[str], groups: Sequence[str]) -> List[int]:
    """Group index of every task language: -1 for "cs" (no label), -2 for a language without a group."""
    return [groups.index(name) if name in groups else (-1 if name == CODE_SWITCH else -2) for name in languages]


def token_labels(
    inputs: AuxLossInputs, groups: Sequence[str], languages: Sequence[str], num_tokens: int, device: torch.device
) -> torch.Tensor:
    """Group index of each valid token's language label, -1 where unlabelled.  (N,) long.

    Raises ValueError for a label in the batch that is neither a projector group nor "cs".
    """
    aux = inputs.projector_aux
    languages = tuple(inputs.languages) if inputs.languages else tuple(languages)
    if "token_lang" in aux:
        lang_ids = aux["token_lang"].to(device).long()  # (N,)
    elif inputs.lang is not None:
        lang_ids = inputs.lang.to(device).long().index_select(0, aux["token_utt"].to(device))  # (N,)
    else:
        return torch.full((num_tokens,), -1, dtype=torch.long, device=device)
    table = group_of_language(languages, groups)
    if -2 in table:  # only then is a (synchronising) check of the batch needed
        bad = torch.tensor([g == -2 for g in table], device=device)
        known = lang_ids >= 0
        present = torch.zeros_like(known)
        present[known] = bad[lang_ids[known]]
        if bool(present.any()):
            name = languages[int(lang_ids[present][0])]
            raise ValueError(
                f"language label '{name}' has no expert group: the projector's groups are {list(groups)} "
                f"(and '{CODE_SWITCH}' marks code-switch utterances); add '{name}' to projector_conf.groups "
                f"or relabel the data"
            )
    lookup = torch.tensor(table + [-1], device=device)  # index -1 (unknown) -> last entry -> -1
    labels = lookup[lang_ids.clamp(min=-1)]
    return labels.clamp(min=-1)


class _RoutingLoss(AbsAuxLoss):
    """Shared construction and routing statistics of the routing-loss hooks."""

    default_prefix = "routing"

    def __init__(
        self,
        projector: torch.nn.Module,
        languages: Sequence[str] = (),
        stat_prefix: Optional[str] = None,
        routing_stats: bool = True,
    ):
        super().__init__()
        # Plain values only: keeping the projector as a submodule would duplicate its parameters.
        self.groups: Tuple[str, ...] = tuple(projector.groups)
        self.experts_per_group: int = int(projector.experts_per_group)
        self.num_groups = len(self.groups)
        self.num_experts = self.num_groups * self.experts_per_group
        self.languages: Tuple[str, ...] = tuple(languages)
        self.stat_prefix = self.default_prefix if stat_prefix is None else stat_prefix
        self.routing_stats = routing_stats

    def _name(self, stat: str) -> str:
        return f"{self.stat_prefix}_{stat}" if self.stat_prefix else stat

    def _aux(self, inputs: AuxLossInputs) -> Tuple[torch.Tensor, torch.Tensor]:
        aux = inputs.projector_aux
        if "router_logits" not in aux:
            raise KeyError(
                f"{type(self).__name__} needs a routing projector (aux key 'router_logits'); "
                f"the projector returned keys {sorted(aux)}"
            )
        logits = aux["router_logits"].float()
        expert_index = aux["expert_index"]
        if logits.dim() == 2:  # a single layer given as (N, E)
            logits, expert_index = logits.unsqueeze(0), expert_index.unsqueeze(0)
        return logits, expert_index  # (L, N, E), (L, N, k)

    def _labels(self, inputs: AuxLossInputs, logits: torch.Tensor) -> torch.Tensor:
        return token_labels(inputs, self.groups, self.languages, logits.size(1), logits.device)

    def _stats(
        self,
        loss: torch.Tensor,
        logits: torch.Tensor,
        expert_index: torch.Tensor,
        labels: Optional[torch.Tensor],
        inputs: AuxLossInputs,
    ) -> Dict[str, torch.Tensor]:
        stats = {f"loss_{self.stat_prefix}" if self.stat_prefix else "loss_aux": loss.detach()}
        if not self.routing_stats:
            return stats
        with torch.no_grad():
            num_layers, num_tokens, _ = logits.shape
            if labels is not None:
                top1_group = torch.div(expert_index[..., 0], self.experts_per_group, rounding_mode="floor")  # (L, N)
                for g, name in enumerate(self.groups):
                    mine = (labels == g).unsqueeze(0)  # (1, N)
                    count = mine.sum().float() * num_layers
                    hits = ((top1_group == g) & mine).sum().float()
                    acc = torch.where(count > 0, hits / count.clamp(min=1), logits.new_tensor(math.nan))
                    stats[self._name(f"route_acc_{name}")] = acc
                labelled = labels >= 0
                framed = inputs.projector_aux.get("token_frame_labelled")  # (N,) bool, absent: none
                framed = torch.zeros_like(labelled) if framed is None else labelled & framed.to(labels.device)
                count = labelled.sum().float()
                share = torch.where(count > 0, framed.sum().float() / count.clamp(min=1), logits.new_tensor(math.nan))
                stats[self._name("frame_labelled")] = share
            load = torch.bincount(expert_index.reshape(-1), minlength=self.num_experts).float()
            load = load / load.sum().clamp(min=1)
            for e in range(self.num_experts):
                stats[self._name(f"load_e{e}")] = load[e]
            log_probs = torch.log_softmax(logits, dim=-1)
            entropy = -(log_probs.exp() * log_probs).sum(-1)  # (L, N)
            stats[self._name("entropy")] = entropy.mean() if num_tokens else logits.new_tensor(math.nan)
        return stats


# --------------------------------------------------------------------------------------------------
# the losses
# --------------------------------------------------------------------------------------------------


class LanguageLoss(_RoutingLoss):
    """L_lang = -mean_t log P_t(l_t): route every labelled token into its language's group.

    Averaged over the labelled tokens of the (local) batch and over layers; the tokens of code-switch
    ("cs") and unknown (-1) utterances are labelled only by frame labels (``token_lang``, see the
    module docstring), else excluded.  Zero when the batch has no labelled token.
    """

    default_prefix = "lang"

    def forward(self, inputs: AuxLossInputs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        logits, expert_index = self._aux(inputs)  # (L, N, E), (L, N, k)
        labels = self._labels(inputs, logits)  # (N,)
        num_layers, num_tokens, _ = logits.shape
        log_probs = torch.log_softmax(logits, dim=-1).view(num_layers, num_tokens, self.num_groups, -1)
        log_group_mass = torch.logsumexp(log_probs, dim=-1)  # (L, N, G): log P_t(g)
        labelled = labels >= 0  # (N,)
        picked = log_group_mass[:, labelled].gather(-1, labels[labelled].view(1, -1, 1).expand(num_layers, -1, 1))
        if picked.numel():
            loss = -picked.mean()
        else:
            loss = logits.sum() * 0.0  # keeps the graph (and the key set) the same in every step
        return loss, self._stats(loss, logits, expert_index, labels, inputs)


class IntraGroupBalanceLoss(_RoutingLoss):
    """Switch-style load balance inside each language group (never across groups).

    For group g over its token set S_g (``token_set`` below):
        f_gj = c_gj / sum_j' c_gj'  with c_gj = number of dispatches of S_g tokens to expert (g, j),
        p_gj = mean_{t in S_g} pi_t(g, j) / P_t(g),
        L    = mean_g  n * sum_j f_gj * p_gj        (1 when balanced; groups with empty S_g skipped).

    ``token_set`` decides S_g:
        "label_or_dispatched" (default): a labelled token belongs to its language's group; an unlabelled
            token (code-switch, -1, no labels) belongs to every group it was dispatched to (any of its
            top-k experts in that group).  Works for monolingual, code-switch and mixed batches.
        "label": labelled tokens only (unlabelled tokens do not count).
        "dispatched": labels ignored; S_g = tokens with at least one top-k expert in group g, so f_g is
            exactly the share of group g's load taken by each of its experts.
    Counts c, S_g sizes and the sums over S_g of pi/P are all-reduced over data-parallel processes.
    """

    default_prefix = "balance"
    reduces_across_ranks = True

    def __init__(self, projector, languages=(), token_set: str = "label_or_dispatched", **kwargs):
        super().__init__(projector, languages, **kwargs)
        if token_set not in TOKEN_SETS:
            raise ValueError(f"token_set must be one of {TOKEN_SETS}, got '{token_set}'")
        self.token_set = token_set

    def forward(self, inputs: AuxLossInputs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        logits, expert_index = self._aux(inputs)  # (L, N, E), (L, N, k)
        num_layers, num_tokens, _ = logits.shape
        G, n = self.num_groups, self.experts_per_group
        labels = self._labels(inputs, logits) if self.token_set != "dispatched" else None  # (N,)

        # Dispatch counts per token and expert: (L, N, G, n), 0/1 (top-k experts are distinct).
        dispatched = torch.zeros_like(logits).scatter_(-1, expert_index, 1.0).view(num_layers, num_tokens, G, n)
        # Membership of token t in S_g: (L, N, G).
        reaches_group = dispatched.sum(-1) > 0
        if labels is None:
            member = reaches_group
        else:
            by_label = torch.nn.functional.one_hot(labels.clamp(min=0), G).bool() & (labels >= 0).unsqueeze(-1)
            by_label = by_label.unsqueeze(0).expand(num_layers, -1, -1)
            if self.token_set == "label":
                member = by_label
            else:
                member = torch.where((labels >= 0).view(1, -1, 1), by_label, reaches_group)
        member = member.float()

        # pi_t(g, j) / P_t(g) is the softmax of the logits inside group g.
        in_group = torch.softmax(logits.view(num_layers, num_tokens, G, n), dim=-1)  # (L, N, G, n)
        counts = torch.einsum("lng,lngj->lgj", member, dispatched)  # (L, G, n): c_gj
        sizes = member.sum(1)  # (L, G): |S_g|
        prob_sums = torch.einsum("lng,lngj->lgj", member, in_group)  # (L, G, n): sum_{S_g} pi/P

        # Global sums over data-parallel processes: sums and counts, one collective.
        total = all_reduce_sum(torch.cat([counts.reshape(-1), sizes.reshape(-1), prob_sums.reshape(-1)]))
        counts, sizes, total_prob_sums = total.split([counts.numel(), sizes.numel(), prob_sums.numel()])
        counts, sizes = counts.view(num_layers, G, n), sizes.view(num_layers, G)
        prob_sums = with_local_grad(total_prob_sums, prob_sums)

        f = counts / counts.sum(-1, keepdim=True).clamp(min=1)  # (L, G, n)
        p = prob_sums / sizes.unsqueeze(-1).clamp(min=1)  # (L, G, n)
        per_group = n * (f * p).sum(-1)  # (L, G)
        active = (sizes > 0).float()  # (L, G)
        per_layer = (per_group * active).sum(-1) / active.sum(-1).clamp(min=1)  # (L,)
        loss = per_layer.mean()
        if labels is None:
            labels = self._labels(inputs, logits) if self.routing_stats else None
        return loss, self._stats(loss, logits, expert_index, labels, inputs)


class GlobalBalanceLoss(_RoutingLoss):
    """Switch-Transformer balance over all E experts (the ablation; it fights the language loss).

    f_e = share of all top-k dispatches going to expert e, p_e = mean_t pi_t(e), L = E * sum_e f_e p_e,
    over all valid tokens; all-reduced like the intra-group loss.
    """

    default_prefix = "global_balance"
    reduces_across_ranks = True

    def forward(self, inputs: AuxLossInputs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        logits, expert_index = self._aux(inputs)  # (L, N, E), (L, N, k)
        num_layers, num_tokens, E = logits.shape
        dispatched = torch.zeros_like(logits).scatter_(-1, expert_index, 1.0)  # (L, N, E)
        counts = dispatched.sum(1)  # (L, E)
        prob_sums = torch.softmax(logits, dim=-1).sum(1)  # (L, E)
        total = all_reduce_sum(
            torch.cat([counts.reshape(-1), prob_sums.reshape(-1), logits.new_tensor([num_tokens])])
        )
        counts, total_prob_sums, tokens = total.split([counts.numel(), prob_sums.numel(), 1])
        counts = counts.view(num_layers, E)
        prob_sums = with_local_grad(total_prob_sums, prob_sums)
        f = counts / counts.sum(-1, keepdim=True).clamp(min=1)
        p = prob_sums / tokens.clamp(min=1)
        loss = (E * (f * p).sum(-1)).mean()
        labels = self._labels(inputs, logits) if self.routing_stats else None
        return loss, self._stats(loss, logits, expert_index, labels, inputs)


class RouterZLoss(_RoutingLoss):
    """Router z-loss (ST-MoE): mean over tokens and layers of logsumexp(logits)^2."""

    default_prefix = "z_loss"

    def forward(self, inputs: AuxLossInputs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        logits, expert_index = self._aux(inputs)  # (L, N, E), (L, N, k)
        if logits.size(1):
            loss = torch.logsumexp(logits, dim=-1).pow(2).mean()
        else:
            loss = logits.sum() * 0.0
        labels = self._labels(inputs, logits) if self.routing_stats else None
        return loss, self._stats(loss, logits, expert_index, labels, inputs)
