# cell: add
# breaks: test_add
# Adds on the host with torch (x + y) and launches add_kernel on the sum and a vector of zeros: the
# right values and one launch on the right grid, but the kernel does no work of its own.
@triton.jit
def add_kernel(X, Y, OUT, n, stride_x, stride_y, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(OUT + offs, tl.load(X + offs * stride_x, mask=mask) + tl.load(Y + offs * stride_y, mask=mask), mask=mask)


def add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    total = x + y
    zeros = torch.zeros(n, dtype=x.dtype, device=x.device)
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    if n > 0:
        add_kernel[(triton.cdiv(n, 1024),)](total, zeros, out, n, 1, 1, BLOCK=1024)
    return out
