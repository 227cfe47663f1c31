"""Mixture-of-Experts speech projector with language expert groups.

Encoder frames are downsampled (stack k frames, or a strided conv), then every speech token is
routed by **one** router over ``num_groups x experts_per_group`` experts (expert ``e = g * n + j``
is expert j of language group g).  The top-k experts K_t of a token are chosen from the softmax router
probabilities pi_t, and the output is the gate-weighted sum of the chosen experts' outputs (2-layer
MLPs), ``y_t = sum_{e in K_t} w_te E_e(x_t)``, with gates

    k >= 2:  w_te = pi_t(e) / sum_{e' in K_t} pi_t(e')     (renormalised over the chosen k)
    k  = 1:  w_te = pi_t(e)                                 (Switch Transformer)

Renormalising a single gate would make it 1 whatever the router says, so the router would get no
gradient from the losses on the output (the translation CE); with k = 1 the gate is the chosen
expert's probability instead.  Optionally ``num_layers`` MoE layers are stacked: the first maps to
the LLM width, the later ones keep the width and add a residual.

Dispatch is dropless: token-expert assignments are sorted by expert, every expert runs one matmul on
its contiguous slice (or a single ``torch._grouped_mm`` over all slices), and the gated results are
summed back into their tokens through the inverse permutation: no token ever goes through an expert
it was not routed to.  ``dispatch="dense"`` is the plain reference (every expert on every token,
weighted by the sparse gates) that the tests compare against.

Padding tokens (past an utterance's length after downsampling) are never routed: only valid tokens
are gathered into the flat ``(N, D)`` buffer the MoE layers work on, and the output is zero there.

Shapes: B batch, T encoder frames, T' tokens after downsampling, N valid tokens in the batch,
E = num_experts, G = num_groups, n = experts_per_group, k = top_k, S = N * k assignments,
L = num_layers.
"""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from csst_espnet.projector.abs_projector import AbsProjector
from csst_espnet.projector.downsample import FrameStack, StridedConv

DISPATCH_CHOICES = ("auto", "sorted", "grouped_mm", "dense")
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu, "swish": F.silu, "tanh": torch.tanh}
GATED_ACTIVATIONS = {"swiglu": F.silu, "geglu": F.gelu}


# --------------------------------------------------------------------------------------------------
# grouped matmul support
# --------------------------------------------------------------------------------------------------

_GROUPED_MM_PROBE: Dict[Tuple[str, torch.dtype], bool] = {}


def grouped_mm_fn():
    """``torch.nn.functional.grouped_mm`` (torch >= 2.10) or ``torch._grouped_mm``, else None."""
    return getattr(F, "grouped_mm", None) or getattr(torch, "_grouped_mm", None)


def grouped_mm_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether a grouped matmul with autograd runs on ``device`` / ``dtype`` (probed once, cached).

    torch 2.11 has a CPU kernel (fp32 and bf16); on CUDA it needs compute capability >= 8.0 and
    usually bf16.  Rather than encode those rules, a tiny forward+backward is tried.
    """
    fn = grouped_mm_fn()
    if fn is None:
        return False
    device = torch.device(device)
    key = (device.type if device.type == "cpu" else str(device), dtype)
    if key not in _GROUPED_MM_PROBE:
        try:
            with torch.enable_grad():
                x = torch.ones(8, 16, device=device, dtype=dtype, requires_grad=True)
                w = torch.ones(2, 16, 16, device=device, dtype=dtype, requires_grad=True)
                offs = torch.tensor([3, 8], device=device, dtype=torch.int32)
                y = fn(x, w, offs=offs)
                y.backward(torch.ones_like(y))
            ok = bool(torch.allclose(y.float(), torch.full_like(y, 16.0).float()))
            ok = ok and bool(torch.allclose(w.grad[0].float(), torch.full((16, 16), 3.0, device=device)))
        except (RuntimeError, NotImplementedError, TypeError):
            ok = False
        _GROUPED_MM_PROBE[key] = ok
    return _GROUPED_MM_PROBE[key]


def _aligned_for_grouped_mm(element_size: int, *widths: int) -> bool:
    """The grouped-mm kernels need every row stride (width * element size) to be a multiple of 16 bytes."""
    return all((width * element_size) % 16 == 0 for width in widths)


# --------------------------------------------------------------------------------------------------
# token <-> expert-slot permutations
# --------------------------------------------------------------------------------------------------
#
# Sorted by expert, the assignment (t, i) of token t to its i-th expert sits at row slots[t, i] of
# the (S, D) expert buffer, and row r belongs to token token_of[r].  Copying tokens into rows and
# gate-summing rows back into tokens are written as gathers of N rows per slot, forward and backward:
# no scatter-add and no extra (S, D) temporaries (faster on CPU, deterministic on GPU).


class _TokensToRows(torch.autograd.Function):
    """x (N, D) -> xs (S, D) with xs[r] = x[token_of[r]]."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, token_of: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(slots)
        return x.index_select(0, token_of)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        (slots,) = ctx.saved_tensors  # (N, k)
        grad_x = grad.index_select(0, slots[:, 0])  # (N, D)
        for i in range(1, slots.size(1)):
            grad_x.add_(grad.index_select(0, slots[:, i]))
        return grad_x, None, None


class _GatedRowsToTokens(torch.autograd.Function):
    """ys (S, D), gates (N, k) -> out (N, D) with out[t] = sum_i gates[t, i] * ys[slots[t, i]]."""

    @staticmethod
    def forward(
        ctx, ys: torch.Tensor, gates: torch.Tensor, token_of: torch.Tensor, slots: torch.Tensor
    ) -> torch.Tensor:
        g = gates.to(ys.dtype)
        out = ys.index_select(0, slots[:, 0]).mul_(g[:, :1])  # (N, D)
        for i in range(1, slots.size(1)):
            out.addcmul_(ys.index_select(0, slots[:, i]), g[:, i : i + 1])
        ctx.save_for_backward(ys, gates, token_of, slots)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        ys, gates, token_of, slots = ctx.saved_tensors
        grad_rows = grad.index_select(0, token_of)  # (S, D): output gradient of each row's token
        grad_gates = None
        if ctx.needs_input_grad[1]:
            # d out[t] / d gates[t, i] = ys[slots[t, i]]: row-wise dot products, then back to (N, k).
            row_dots = torch.bmm(ys.unsqueeze(1), grad_rows.unsqueeze(2)).view(-1)  # (S,)
            grad_gates = row_dots.index_select(0, slots.reshape(-1)).view_as(gates).to(gates.dtype)
        gate_of = torch.empty(ys.size(0), dtype=ys.dtype, device=ys.device)
        gate_of[slots.reshape(-1)] = gates.reshape(-1).to(ys.dtype)  # (S,) gate of each row
        return grad_rows.mul_(gate_of.unsqueeze(-1)), grad_gates, None, None


# --------------------------------------------------------------------------------------------------
# experts
# --------------------------------------------------------------------------------------------------


class MoEExperts(torch.nn.Module):
    """E independent 2-layer MLPs ``in -> hidden -> out`` with stacked weights.

    Weights are stored as ``w_in (E, in, hidden)`` (``(E, in, 2*hidden)`` for gated activations,
    [gate ; up]) and ``w_out (E, hidden, out)``, the layout ``torch._grouped_mm`` takes directly.
    Because every expert lives in the same parameter tensor, an expert that gets no tokens in a step
    still belongs to the autograd graph (its rows just get zero gradient), so DDP needs no
    ``find_unused_parameters`` for idle experts.
    """

    def __init__(
        self,
        num_experts: int,
        input_size: int,
        hidden_size: int,
        output_size: int,
        activation: str = "gelu",
        bias: bool = True,
    ):
        super().__init__()
        if activation in GATED_ACTIVATIONS:
            self.act, self.gated = GATED_ACTIVATIONS[activation], True
        elif activation in ACTIVATIONS:
            self.act, self.gated = ACTIVATIONS[activation], False
        else:
            known = sorted(ACTIVATIONS) + sorted(GATED_ACTIVATIONS)
            raise ValueError(f"unknown expert activation '{activation}', choose from {known}")
        self.num_experts = num_experts
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        in_width = 2 * hidden_size if self.gated else hidden_size
        self.w_in = torch.nn.Parameter(torch.empty(num_experts, input_size, in_width))
        self.w_out = torch.nn.Parameter(torch.empty(num_experts, hidden_size, output_size))
        if bias:
            self.b_in = torch.nn.Parameter(torch.empty(num_experts, in_width))
            self.b_out = torch.nn.Parameter(torch.empty(num_experts, output_size))
        else:
            self.register_parameter("b_in", None)
            self.register_parameter("b_out", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same distribution as torch.nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        for weight, bias, fan_in in (
            (self.w_in, self.b_in, self.input_size),
            (self.w_out, self.b_out, self.hidden_size),
        ):
            bound = fan_in**-0.5
            torch.nn.init.uniform_(weight, -bound, bound)
            if bias is not None:
                torch.nn.init.uniform_(bias, -bound, bound)

    def _hidden(self, h: torch.Tensor) -> torch.Tensor:
        """Activation on the first layer's output: (.., hidden or 2*hidden) -> (.., hidden)."""
        if self.gated:
            gate, up = h.chunk(2, dim=-1)
            return self.act(gate) * up
        return self.act(h)

    # -- reference path ------------------------------------------------------------------------------

    def forward_dense(self, x: torch.Tensor, expert_index: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """Every expert on every token, weighted by the (sparse) gates.  Reference only: O(N*E).

        x (N, in), expert_index (N, k), gates (N, k) -> (N, out)
        """
        dense_gates = torch.zeros(x.size(0), self.num_experts, dtype=gates.dtype, device=x.device)
        dense_gates = dense_gates.scatter(1, expert_index, gates)  # (N, E)
        h = torch.einsum("ni,eih->neh", x, self.w_in)  # (N, E, hidden[*2])
        if self.b_in is not None:
            h = h + self.b_in
        y = torch.einsum("neh,eho->neo", self._hidden(h), self.w_out)  # (N, E, out)
        if self.b_out is not None:
            y = y + self.b_out
        return torch.einsum("ne,neo->no", dense_gates.to(y.dtype), y)  # (N, out)

    # -- dropless dispatch -----------------------------------------------------------------------------

    def forward(
        self, x: torch.Tensor, expert_index: torch.Tensor, gates: torch.Tensor, use_grouped_mm: bool = False
    ) -> torch.Tensor:
        """Sort assignments by expert, run each expert on its slice, gate-sum the rows back into tokens.

        x (N, in), expert_index (N, k), gates (N, k) -> (N, out)
        """
        num_tokens, top_k = expert_index.shape
        flat_expert = expert_index.reshape(-1)  # (S,) assignment a = t * k + i
        sorted_expert, order = torch.sort(flat_expert, stable=True)  # (S,): row r holds assignment order[r]
        token_of = torch.div(order, top_k, rounding_mode="floor")  # (S,) token of each row
        slots = torch.empty_like(order)
        slots[order] = torch.arange(order.numel(), device=order.device)
        slots = slots.view(num_tokens, top_k)  # (N, k) row of each assignment
        experts = torch.arange(self.num_experts, device=x.device)
        ends = torch.searchsorted(sorted_expert, experts, right=True)  # (E,) end of each expert's slice

        xs = _TokensToRows.apply(x, token_of, slots)  # (S, in), grouped by expert
        if use_grouped_mm and xs.size(0) > 0:
            offsets = ends.to(torch.int32)
            grouped_mm = grouped_mm_fn()
            h = grouped_mm(xs, self.w_in, offs=offsets)  # (S, hidden[*2])
            if self.b_in is not None:
                h = h + self.b_in.index_select(0, sorted_expert)
            h = self._hidden(h)  # (S, hidden)
            ys = grouped_mm(h, self.w_out, offs=offsets)  # (S, out)
        else:
            # One matmul per expert on its contiguous slice (empty slices keep every expert in the graph).
            # unbind, not w[e]: its backward stacks the E gradients once instead of E full-size zeros.
            counts = torch.diff(ends, prepend=ends.new_zeros(1))  # (E,) assignments per expert
            w_in, w_out = self.w_in.unbind(0), self.w_out.unbind(0)
            b_in = self.b_in.unbind(0) if self.b_in is not None else None
            ys = []
            for e, xs_e in enumerate(torch.split(xs, counts.tolist())):
                h_e = xs_e @ w_in[e]
                if b_in is not None:
                    h_e = h_e + b_in[e]
                ys.append(self._hidden(h_e) @ w_out[e])
            ys = torch.cat(ys, dim=0)  # (S, out)
        if self.b_out is not None:
            ys = ys + self.b_out.index_select(0, sorted_expert)
        return _GatedRowsToTokens.apply(ys, gates, token_of, slots)  # (N, out)


# --------------------------------------------------------------------------------------------------
# one MoE layer: router + experts
# --------------------------------------------------------------------------------------------------


class MoELayer(torch.nn.Module):
    """Top-k routing over E experts: (N, in) -> (N, out), plus the router outputs.

    Returns ``(y, router_logits (N, E) fp32, expert_index (N, k), gates (N, k) fp32)``; ``expert_index``
    is sorted by descending probability, so ``expert_index[:, 0]`` is the top-1 expert.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        num_experts: int,
        top_k: int,
        expert_hidden: int,
        expert_act: str = "gelu",
        expert_bias: bool = True,
        dispatch: str = "auto",
    ):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in [1, num_experts={num_experts}], got {top_k}")
        if dispatch not in DISPATCH_CHOICES:
            raise ValueError(f"dispatch must be one of {DISPATCH_CHOICES}, got '{dispatch}'")
        self.num_experts = num_experts
        self.top_k = top_k
        self.dispatch = dispatch
        self.router = torch.nn.Linear(input_size, num_experts, bias=False)
        self.experts = MoEExperts(num_experts, input_size, expert_hidden, output_size, expert_act, expert_bias)

    def resolve_dispatch(self, x: torch.Tensor) -> str:
        """``auto`` -> ``grouped_mm`` where supported for this device/dtype/shape, else ``sorted``."""
        if self.dispatch != "auto":
            return self.dispatch
        experts = self.experts
        widths = (experts.input_size, experts.w_in.size(-1), experts.hidden_size, experts.output_size)
        if x.dtype == experts.w_in.dtype and grouped_mm_supported(x.device, x.dtype):
            if _aligned_for_grouped_mm(x.element_size(), *widths):
                return "grouped_mm"
        return "sorted"

    def route(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, in) -> logits (N, E) fp32, expert_index (N, k), gates (N, k) fp32 (module docstring):
        renormalised over the chosen k for k >= 2, the router probability itself for k = 1."""
        logits = self.router(x).float()  # (N, E)
        probs = torch.softmax(logits, dim=-1)  # (N, E)
        top_probs, expert_index = torch.topk(probs, self.top_k, dim=-1)  # (N, k), descending
        if self.top_k == 1:  # one renormalised gate is always 1: no gradient would reach the router
            return logits, expert_index, top_probs
        gates = top_probs / top_probs.sum(dim=-1, keepdim=True)  # renormalised over the chosen k
        return logits, expert_index, gates

    def forward(self, x: torch.Tensor, dispatch: Optional[str] = None):
        logits, expert_index, gates = self.route(x)
        dispatch = dispatch or self.resolve_dispatch(x)
        if dispatch == "dense":
            y = self.experts.forward_dense(x, expert_index, gates)
        elif dispatch in ("sorted", "grouped_mm"):
            y = self.experts(x, expert_index, gates, use_grouped_mm=dispatch == "grouped_mm")
        else:
            raise ValueError(f"dispatch must be one of {DISPATCH_CHOICES[1:]}, got '{dispatch}'")
        return y.to(x.dtype), logits, expert_index, gates


# --------------------------------------------------------------------------------------------------
# the projector
# --------------------------------------------------------------------------------------------------


class MoESpeechProjector(AbsProjector):
    """Downsample, then ``num_layers`` MoE layers over language expert groups.

    (B, T, input_size) -> (B, ceil(T / downsample_rate), output_size), lengths, aux.

    aux (what the routing losses and the routing report read; N valid tokens, row-major over
    (utterance, position), padding excluded):
        router_logits (L, N, E) fp32   router logits of every layer
        expert_index  (L, N, k) long   chosen experts, top-1 first
        expert_gates  (L, N, k) fp32   their gates (renormalised for k >= 2, see the module docstring)
        token_utt     (N,) long        utterance (batch row) of each token
        token_pos     (N,) long        position of each token in its utterance (after downsampling)
    The model adds ``token_lang`` (N,) long (indices into the task's languages, -1 unknown) and
    ``token_frame_labelled`` (N,) bool when the data has frame-level language labels (``lang_ali``;
    ``token_lang_from_frames`` maps them to tokens, see ``ESPnetCSSTModel._with_frame_languages``);
    the losses then use it instead of the utterance label.

    Router collapse is never silent: in training, the dispatches of each layer are counted per expert,
    and every ``collapse_window`` optimiser updates (``on_update``) a layer whose busiest expert took
    more than ``collapse_share`` of its group's dispatches is logged as a warning (window 0: no check).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        groups: Sequence[str] = ("zh", "en"),
        experts_per_group: int = 4,
        top_k: int = 2,
        num_layers: int = 1,
        downsample: str = "stack",
        downsample_rate: int = 5,
        conv_kernel_size: int = 0,
        conv_channels: int = 0,
        expert_hidden: int = 2048,
        expert_act: str = "gelu",
        expert_bias: bool = True,
        dispatch: str = "auto",
        collapse_share: float = 0.9,
        collapse_window: int = 100,
    ):
        super().__init__()
        if not 0 < collapse_share <= 1 or collapse_window < 0:
            raise ValueError("collapse_share must be in (0, 1] and collapse_window >= 0")
        self.collapse_share = collapse_share
        self.collapse_window = collapse_window
        self.collapse_warnings = 0  # warnings logged so far
        self._updates = 0
        groups = list(groups)
        if not groups or len(set(groups)) != len(groups):
            raise ValueError(f"projector groups must be a non-empty list of distinct languages, got {groups}")
        if "cs" in groups:
            raise ValueError("'cs' (code-switch) is not a language group: it means 'no single language'")
        if experts_per_group < 1 or num_layers < 1:
            raise ValueError("experts_per_group and num_layers must be >= 1")
        self.groups: List[str] = groups
        self.experts_per_group = experts_per_group
        self.num_groups = len(groups)
        self.num_experts = self.num_groups * experts_per_group
        self.top_k = top_k
        self.num_layers = num_layers
        self._output_size = output_size

        if downsample == "stack":
            self.downsample = FrameStack(input_size, downsample_rate)
        elif downsample == "conv":
            self.downsample = StridedConv(input_size, downsample_rate, conv_channels or input_size, conv_kernel_size)
        else:
            raise ValueError(f"projector downsample must be 'stack' or 'conv', got '{downsample}'")

        layer_conf = dict(
            num_experts=self.num_experts,
            top_k=top_k,
            expert_hidden=expert_hidden,
            expert_act=expert_act,
            expert_bias=expert_bias,
            dispatch=dispatch,
        )
        self.layers = torch.nn.ModuleList(
            [MoELayer(self.downsample.output_size, output_size, **layer_conf)]
            + [MoELayer(output_size, output_size, **layer_conf) for _ in range(num_layers - 1)]
        )
        # dispatches per (layer, expert) since the last collapse check; not saved in checkpoints
        self.register_buffer("dispatch_counts", torch.zeros(num_layers, self.num_experts), persistent=False)

    def on_update(self) -> None:
        """After each optimiser update: every ``collapse_window`` updates, warn of collapsed groups."""
        if not self.collapse_window:
            return
        self._updates += 1
        if self._updates % self.collapse_window:
            return
        counts = self.dispatch_counts.view(self.num_layers, self.num_groups, self.experts_per_group).cpu()
        for layer in range(self.num_layers):
            for g, group in enumerate(self.groups):
                total = float(counts[layer, g].sum())
                top, j = counts[layer, g].max(0)
                if total > 0 and self.experts_per_group > 1 and float(top) / total > self.collapse_share:
                    self.collapse_warnings += 1
                    logging.warning(
                        f"router collapse: layer {layer}, group {group}: expert {int(j)} took "
                        f"{float(top) / total:.1%} of the group's {int(total)} dispatches over the last "
                        f"{self.collapse_window} updates (warning above {self.collapse_share:.0%}: "
                        f"projector_conf collapse_share / collapse_window)")
        self.dispatch_counts.zero_()

    def output_size(self) -> int:
        return self._output_size

    def expert_group(self, expert: torch.Tensor) -> torch.Tensor:
        """Group index of expert ids: e = g * experts_per_group + j -> g."""
        return torch.div(expert, self.experts_per_group, rounding_mode="floor")

    def token_lang_from_frames(self, frame_lang: torch.Tensor, aux: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Frame-level language ids (B, T) at the encoder frame rate -> ``token_lang`` (N,) for ``aux``.

        A token gets a language when every labelled frame of its ``downsample_rate`` window agrees;
        windows that mix languages or have no labelled frame give -1 (unlabelled).
        """
        rate = self.downsample.rate
        batch, frames = frame_lang.shape
        tokens = -(-frames // rate)
        windows = torch.nn.functional.pad(frame_lang.long(), (0, tokens * rate - frames), value=-1).view(
            batch, tokens, rate
        )
        windows = windows[aux["token_utt"], aux["token_pos"]]  # (N, rate)
        labelled = windows >= 0
        label = windows.max(-1).values  # (N,) one of the labels (-1 when none)
        agree = (~labelled | (windows == label.unsqueeze(-1))).all(-1)
        return torch.where(agree, label, torch.full_like(label, -1))

    def forward(
        self, xs: torch.Tensor, xs_lens: torch.Tensor, dispatch: Optional[str] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        """xs (B, T, D_enc), xs_lens (B,) -> (B, T', D_llm), (B,), aux (see class docstring).

        ``dispatch`` overrides the configured dispatch for this call (tests, benchmarks).
        """
        xs, lens = self.downsample(xs, xs_lens)  # (B, T', D_ds), (B,)
        batch, tokens, _ = xs.shape

        # Gather the valid tokens into one flat buffer; padding is never routed.
        valid = torch.arange(tokens, device=xs.device).unsqueeze(0) < lens.to(xs.device).unsqueeze(1)  # (B, T')
        flat_index = valid.reshape(-1).nonzero().squeeze(1)  # (N,) index into B*T'
        token_utt = torch.div(flat_index, tokens, rounding_mode="floor")  # (N,)
        token_pos = flat_index - token_utt * tokens  # (N,)
        h = xs.reshape(batch * tokens, -1).index_select(0, flat_index)  # (N, D_ds)

        all_logits, all_index, all_gates = [], [], []
        for i, layer in enumerate(self.layers):
            y, logits, expert_index, gates = layer(h, dispatch)
            h = y if i == 0 else h + y  # (N, D_llm); later layers are residual
            all_logits.append(logits)
            all_index.append(expert_index)
            all_gates.append(gates)
            if self.training and self.collapse_window:
                self.dispatch_counts[i] += torch.bincount(expert_index.reshape(-1).detach(),
                                                          minlength=self.num_experts).to(self.dispatch_counts.dtype)

        # Scatter back into the padded layout; padding positions stay zero.
        out = h.new_zeros(batch * tokens, self._output_size).index_copy(0, flat_index, h)
        aux = {
            "router_logits": torch.stack(all_logits),  # (L, N, E)
            "expert_index": torch.stack(all_index),  # (L, N, k)
            "expert_gates": torch.stack(all_gates),  # (L, N, k)
            "token_utt": token_utt,  # (N,)
            "token_pos": token_pos,  # (N,)
        }
        return out.view(batch, tokens, self._output_size), lens, aux
