# cell: checkpoint
# breaks: test_checkpoint
# Differentiates the recomputed output with torch.autograd.grad w.r.t. the inputs only: the
# parameters fn closes over never get a gradient.
class CheckpointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, *args):
        ctx.fn = fn
        ctx.cpu_state = torch.get_rng_state()
        ctx.save_for_backward(*args)
        return fn(*args)

    @staticmethod
    def backward(ctx, grad_out):
        inputs = [a.detach().requires_grad_(a.requires_grad) for a in ctx.saved_tensors]
        with torch.random.fork_rng():
            torch.set_rng_state(ctx.cpu_state)
            with torch.enable_grad():
                out = ctx.fn(*inputs)
        wanted = [a for a in inputs if a.requires_grad]
        grads = iter(torch.autograd.grad(out, wanted, grad_out))
        return (None, *(next(grads) if a.requires_grad else None for a in inputs))


def checkpoint(fn, *args: torch.Tensor) -> torch.Tensor:
    return CheckpointFunction.apply(fn, *args)
