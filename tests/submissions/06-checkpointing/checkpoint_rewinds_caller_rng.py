# cell: checkpoint
# breaks: test_checkpoint
# Restores the forward pass's RNG state before recomputing, so dropout draws the same mask and the
# gradients are right, but not inside torch.random.fork_rng: the caller's random stream is left
# rewound to where the forward pass began, and whatever the caller drew between the two passes
# is drawn again afterwards.
class CheckpointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, *args):
        ctx.fn = fn
        ctx.devices = sorted({a.get_device() for a in args if a.is_cuda})
        ctx.cpu_state = torch.get_rng_state()
        ctx.cuda_states = [torch.cuda.get_rng_state(d) for d in ctx.devices]
        ctx.save_for_backward(*args)
        return fn(*args)

    @staticmethod
    def backward(ctx, grad_out):
        inputs = [a.detach().requires_grad_(a.requires_grad) for a in ctx.saved_tensors]
        torch.set_rng_state(ctx.cpu_state)  # no fork: the caller's stream stays rewound
        for d, state in zip(ctx.devices, ctx.cuda_states):
            torch.cuda.set_rng_state(state, d)
        with torch.enable_grad():
            out = ctx.fn(*inputs)
        torch.autograd.backward(out, grad_out)
        return (None, *(a.grad if a.requires_grad else None for a in inputs))


def checkpoint(fn, *args: torch.Tensor) -> torch.Tensor:
    return CheckpointFunction.apply(fn, *args)
