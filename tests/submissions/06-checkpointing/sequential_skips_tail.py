# cell: checkpoint_sequential
# breaks: test_checkpoint_sequential
# Segments of n // segments layers: when n is not a multiple of segments the last n % segments
# layers never run.
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
        x = checkpoint(lambda h, segment=layers[t * size:(t + 1) * size]: run(segment, h), x)
    return x
