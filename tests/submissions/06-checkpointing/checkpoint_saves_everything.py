# cell: checkpoint
# breaks: test_checkpoint
# Runs fn with grad enabled in the forward pass and keeps that graph "just in case": every
# intermediate is saved anyway, so nothing is gained (it still recomputes in the backward pass).
class CheckpointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, *args):
        ctx.fn = fn
        ctx.cpu_state = torch.get_rng_state()
        ctx.save_for_backward(*args)
        with torch.enable_grad():
            ctx.kept = fn(*[a.detach().requires_grad_(a.is_floating_point()) for a in args])
        return ctx.kept.detach()

    @staticmethod
    def backward(ctx, grad_out):
        inputs = [a.detach().requires_grad_(a.requires_grad) for a in ctx.saved_tensors]
        with torch.random.fork_rng():
            torch.set_rng_state(ctx.cpu_state)
            with torch.enable_grad():
                out = ctx.fn(*inputs)
        torch.autograd.backward(out, grad_out)
        return (None, *(a.grad if a.requires_grad else None for a in inputs))


def checkpoint(fn, *args: torch.Tensor) -> torch.Tensor:
    return CheckpointFunction.apply(fn, *args)
