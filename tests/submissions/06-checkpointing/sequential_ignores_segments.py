# cell: checkpoint_sequential
# breaks: test_checkpoint_sequential
# Always cuts the chain into round(sqrt(n)) segments, the memory-optimal count, whatever
# `segments` asks for: the values, the gradients and the memory bound all look right, but the
# function does not do what it is called with (one checkpoint call per requested segment).
def checkpoint_sequential(layers: list[nn.Module], x: torch.Tensor, segments: int) -> torch.Tensor:
    n = len(layers)
    if not 1 <= segments <= n:
        raise ValueError(f"segments must lie in [1, {n}], got {segments}")
    k = max(1, round(math.sqrt(n)))  # the sqrt(n) rule instead of the argument

    def run(segment, h):
        for layer in segment:
            h = layer(h)
        return h

    size, extra = divmod(n, k)
    start = 0
    for t in range(k):
        stop = start + size + (1 if t < extra else 0)
        x = checkpoint(lambda h, segment=layers[start:stop]: run(segment, h), x)
        start = stop
    return x
