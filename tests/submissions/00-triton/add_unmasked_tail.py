# cell: add
# breaks: test_add
# No mask: the last program's lanes past n load and store outside the tensors. The interpreter reads
# whatever lies there and the values inside n are right; on a GPU those lanes read garbage or fault.
@triton.jit
def add_kernel(X, Y, OUT, n, stride_x, stride_y, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(OUT + offs, tl.load(X + offs * stride_x) + tl.load(Y + offs * stride_y))


def add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    if n > 0:
        add_kernel[(triton.cdiv(n, 1024),)](x, y, out, n, x.stride(0), y.stride(0), BLOCK=1024)
    return out
