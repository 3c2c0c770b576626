# cell: checkpoint
# breaks: test_checkpoint
# Keeps the inputs as a ctx attribute instead of saving them with ctx.save_for_backward: the
# values and gradients are right and saved-tensor hooks see 0 bytes, but autograd no longer
# checks the inputs (one modified in place before backward silently gives wrong gradients), and
# what ctx keeps escapes a measure that only looks at saved tensors.
class CheckpointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, *args):
        ctx.fn = fn
        ctx.devices = sorted({a.get_device() for a in args if a.is_cuda})
        ctx.cpu_state = torch.get_rng_state()
        ctx.cuda_states = [torch.cuda.get_rng_state(d) for d in ctx.devices]
        ctx.inputs = [a.detach() for a in args]  # a plain attribute, not save_for_backward
        return fn(*args)

    @staticmethod
    def backward(ctx, grad_out):
        inputs = [a.detach().requires_grad_(a.requires_grad) for a in ctx.inputs]
        with torch.random.fork_rng(devices=ctx.devices):
            torch.set_rng_state(ctx.cpu_state)
            for d, state in zip(ctx.devices, ctx.cuda_states):
                torch.cuda.set_rng_state(state, d)
            with torch.enable_grad():
                out = ctx.fn(*inputs)
        torch.autograd.backward(out, grad_out)
        return (None, *(a.grad if a.requires_grad else None for a in inputs))


def checkpoint(fn, *args: torch.Tensor) -> torch.Tensor:
    return CheckpointFunction.apply(fn, *args)
