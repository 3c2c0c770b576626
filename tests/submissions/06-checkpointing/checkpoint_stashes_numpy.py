# cell: checkpoint
# breaks: test_checkpoint
# Keeps the forward's graph alive through a NumPy copy of every intermediate "for later": bytes
# that saved-tensor hooks never see. NumPy is refused in this exercise for that reason.
class CheckpointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, *args):
        ctx.fn = fn
        ctx.cpu_state = torch.get_rng_state()
        ctx.save_for_backward(*args)
        out = fn(*args)
        ctx.stash = [a.detach().cpu().numpy().copy() for a in args] + [out.detach().cpu().numpy().copy()]
        return out

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
