"""Autograd formulas of the fused custom ops, so a forward under grad mode runs the fused kernels.

The default formula differentiates the op's torch reference: the forward saves its inputs, and the
backward recomputes the reference on them under autograd and takes its vector-Jacobian product.
Gradients are then exactly the reference's (transformers' math), whichever backend ran the forward;
the price is one recomputation of the op in the backward, as activation checkpointing pays.
An entry of ops/table.py may give its own `backward` instead.
"""

from __future__ import annotations

import torch


def _differentiable(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point()


def register(op, qualname: str) -> None:
    """Register `op`'s autograd formula on the custom op `qualname` (inputs: op args + backend)."""

    def setup_context(ctx, inputs, output):
        inputs = inputs[:-1]  # the trailing backend name
        is_tensor = [isinstance(a, torch.Tensor) for a in inputs]
        ctx.save_for_backward(*(a for a, t in zip(inputs, is_tensor) if t))
        ctx.is_tensor = is_tensor
        ctx.others = [None if t else a for a, t in zip(inputs, is_tensor)]

    def backward(ctx, grad):
        saved = iter(ctx.saved_tensors)
        args = [next(saved) if t else other for t, other in zip(ctx.is_tensor, ctx.others)]
        wanted = [i for i, a in enumerate(args) if _differentiable(a) and ctx.needs_input_grad[i]]
        if op.backward is not None:
            grads = op.backward(args, wanted, grad)
        else:
            with torch.enable_grad():
                leaves = [a.detach().requires_grad_() if i in wanted else a for i, a in enumerate(args)]
                out = op.reference(*leaves)
                grads = torch.autograd.grad(out, [leaves[i] for i in wanted], grad, allow_unused=True)
        result = [None] * (len(args) + 1)  # + the backend name
        for i, g in zip(wanted, grads):
            result[i] = g
        return tuple(result)

    torch.library.register_autograd(qualname, backward, setup_context=setup_context)
