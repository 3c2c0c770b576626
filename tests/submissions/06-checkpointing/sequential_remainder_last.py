# cell: checkpoint_sequential
# breaks: test_checkpoint_sequential
# Segments of n // segments layers, with the remainder piled into the last one (10 layers in 4
# segments: 2, 2, 2, 4): every layer runs, so values and gradients are right, but the sizes are
# not Algorithm 2's (the first n % segments segments get one layer more).
def checkpoint_sequential(layers: list[nn.Module], x: torch.Tensor, segments: int) -> torch.Tensor:
    n = len(layers)
    if not 1 <= segments <= n:
        raise ValueError(f"segments must lie in [1, {n}], got {segments}")
    size = n // segments

    def run(segment, h):
        for layer in segment:
            h = layer(h)
        return h

    for t in range(segments):
        stop = n if t == segments - 1 else (t + 1) * size
        x = checkpoint(lambda h, segment=layers[t * size:stop]: run(segment, h), x)
    return x
