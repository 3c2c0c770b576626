# cell: checkpoint
# breaks: test_checkpoint
# Recomputes without restoring the RNG state: dropout draws a different mask in the backward pass,
# so the gradients belong to a different network than the output.
class CheckpointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, *args):
        ctx.fn = fn
        ctx.save_for_backward(*args)
        return fn(*args)

    @staticmethod
    def backward(ctx, grad_out):
        inputs = [a.detach().requires_grad_(a.requires_grad) for a in ctx.saved_tensors]
        with torch.enable_grad():
            out = ctx.fn(*inputs)
        torch.autograd.backward(out, grad_out)
        return (None, *(a.grad if a.requires_grad else None for a in inputs))


def checkpoint(fn, *args: torch.Tensor) -> torch.Tensor:
    return CheckpointFunction.apply(fn, *args)
