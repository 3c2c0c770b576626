# cell: add
# breaks: test_add
# Ignores the strides: the kernel reads x[i] at X + i, and the wrapper makes the inputs contiguous
# on the host with .contiguous() first, so the values come out right at the cost of two host copies.
@triton.jit
def add_kernel(X, Y, OUT, n, stride_x, stride_y, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(OUT + offs, tl.load(X + offs, mask=mask) + tl.load(Y + offs, mask=mask), mask=mask)


def add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    x, y = x.contiguous(), y.contiguous()
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    if n > 0:
        add_kernel[(triton.cdiv(n, 1024),)](x, y, out, n, 1, 1, BLOCK=1024)
    return out
