# cell: cumsum_rows
# breaks: test_cumsum_rows
# An exclusive scan: out[j] = sum of x[k] for k < j (the scan minus the element itself), so
# out[0] = 0 and every element is one term short.
@triton.jit
def cumsum_kernel(X, OUT, n_cols, stride_row, CHUNK: tl.constexpr):
    row = tl.program_id(0)
    lanes = tl.arange(0, CHUNK)
    carry = 0.0
    for start in range(0, n_cols, CHUNK):
        cols = start + lanes
        inside = cols < n_cols
        vals = tl.load(X + row * stride_row + cols, mask=inside, other=0.0)
        tl.store(OUT + row * n_cols + cols, tl.cumsum(vals, axis=0) - vals + carry, mask=inside)
        carry += tl.sum(vals, axis=0)


def cumsum_rows(x: torch.Tensor) -> torch.Tensor:
    R, C = x.shape
    out = torch.empty((R, C), dtype=torch.float32, device=x.device)
    cumsum_kernel[(R,)](x, out, C, x.stride(0), CHUNK=1024)
    return out
