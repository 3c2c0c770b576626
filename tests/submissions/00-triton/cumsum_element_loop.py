# cell: cumsum_rows
# breaks: test_cumsum_rows
# Loads each chunk as a block but builds its prefix sums one element at a time, a loop over the
# chunk's lanes with tl.where picking each lane: right values, no scan, CHUNK iterations per chunk.
@triton.jit
def cumsum_kernel(X, OUT, n_cols, stride_row, CHUNK: tl.constexpr):
    row = tl.program_id(0)
    lanes = tl.arange(0, CHUNK)
    carry = 0.0
    for start in range(0, n_cols, CHUNK):
        cols = start + lanes
        inside = cols < n_cols
        vals = tl.load(X + row * stride_row + cols, mask=inside, other=0.0)
        prefix = tl.zeros((CHUNK,), dtype=tl.float32)
        for j in range(0, tl.minimum(CHUNK, n_cols - start)):
            carry += tl.sum(tl.where(lanes == j, vals, 0.0), axis=0)
            prefix = tl.where(lanes == j, carry, prefix)
        tl.store(OUT + row * n_cols + cols, prefix, mask=inside)


def cumsum_rows(x: torch.Tensor) -> torch.Tensor:
    R, C = x.shape
    out = torch.empty((R, C), dtype=torch.float32, device=x.device)
    cumsum_kernel[(R,)](x, out, C, x.stride(0), CHUNK=1024)
    return out
