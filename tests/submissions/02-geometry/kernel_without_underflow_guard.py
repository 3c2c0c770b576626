# cell: orient_filter_triton
# breaks: test_orient_filter_triton
# Shewchuk's bound, loaded as a float64 constant, but no underflow guard: near 1e-158 the products
# fall below 2^-1022 and are rounded to multiples of 2^-1074, the bound rounds to 0, and a float det
# of +-2^-1074 with the wrong sign is called certain.
@triton.jit
def orient_filter_kernel(
    a_ptr,  # *f64: (N, 2), contiguous
    b_ptr,  # *f64: (N, 2)
    c_ptr,  # *f64: (N, 2)
    consts_ptr,  # *f64: [(3 + 16 eps) eps, 2^-900]
    sign_ptr,  # *i8: (N,), written
    certain_ptr,  # *bool: (N,), written
    n,  # number of rows
    BLOCK: tl.constexpr,  # rows per program, a power of two
):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # (BLOCK,)
    m = i < n
    ax, ay = tl.load(a_ptr + 2 * i, mask=m, other=0.0), tl.load(a_ptr + 2 * i + 1, mask=m, other=0.0)
    bx, by = tl.load(b_ptr + 2 * i, mask=m, other=0.0), tl.load(b_ptr + 2 * i + 1, mask=m, other=0.0)
    cx, cy = tl.load(c_ptr + 2 * i, mask=m, other=0.0), tl.load(c_ptr + 2 * i + 1, mask=m, other=0.0)
    left = (ax - cx) * (by - cy)
    right = (ay - cy) * (bx - cx)
    det = left - right
    bound = tl.load(consts_ptr) * (tl.abs(left) + tl.abs(right))
    tl.store(sign_ptr + i, tl.where(det > 0, 1, tl.where(det < 0, -1, 0)).to(tl.int8), mask=m)
    tl.store(certain_ptr + i, tl.abs(det) > bound, mask=m)  # no |detleft| + |detright| >= 2^-900


def orient_filter_triton(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor):
    if any(t.dim() != 2 or t.shape[1] != 2 for t in (a, b, c)) or not a.shape == b.shape == c.shape:
        raise ValueError(f"three (N, 2) tensors expected, got {[tuple(t.shape) for t in (a, b, c)]}")
    n = a.shape[0]
    sign = torch.empty(n, dtype=torch.int8, device=a.device)
    certain = torch.empty(n, dtype=torch.bool, device=a.device)
    if n == 0:
        return sign, certain
    eps = 2.0**-53
    consts = torch.tensor([(3 + 16 * eps) * eps, 2.0**-900], dtype=torch.float64, device=a.device)
    BLOCK = 1024
    orient_filter_kernel[(triton.cdiv(n, BLOCK),)](a.contiguous(), b.contiguous(), c.contiguous(), consts,
                                                   sign, certain, n, BLOCK=BLOCK)
    return sign, certain
