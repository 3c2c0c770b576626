# cell: orient_filter_triton
# breaks: test_orient_filter_triton
# The filter computed on the host in torch ops (right, guard included), then a kernel named
# orient_filter_kernel that only copies the host's answer into the outputs: one launch, every load
# and store masked, and none of the work in the kernel.
@triton.jit
def orient_filter_kernel(
    a_ptr,  # *i8: the host's signs
    b_ptr,  # *bool: the host's certain flags
    c_ptr,  # unused
    consts_ptr,  # unused
    sign_ptr,  # *i8: (N,), written
    certain_ptr,  # *bool: (N,), written
    n,  # number of rows
    BLOCK: tl.constexpr,  # rows per program, a power of two
):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # (BLOCK,)
    m = i < n
    tl.store(sign_ptr + i, tl.load(a_ptr + i, mask=m, other=0), mask=m)
    tl.store(certain_ptr + i, tl.load(b_ptr + i, mask=m, other=0), mask=m)


def orient_filter_triton(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor):
    if any(t.dim() != 2 or t.shape[1] != 2 for t in (a, b, c)) or not a.shape == b.shape == c.shape:
        raise ValueError(f"three (N, 2) tensors expected, got {[tuple(t.shape) for t in (a, b, c)]}")
    n = a.shape[0]
    sign = torch.empty(n, dtype=torch.int8, device=a.device)
    certain = torch.empty(n, dtype=torch.bool, device=a.device)
    if n == 0:
        return sign, certain
    eps = 2.0**-53
    left = (a[:, 0] - c[:, 0]) * (b[:, 1] - c[:, 1])
    right = (a[:, 1] - c[:, 1]) * (b[:, 0] - c[:, 0])
    det, detsum = left - right, left.abs() + right.abs()
    host_sign = torch.sign(det).to(torch.int8)
    host_certain = (det.abs() > (3 + 16 * eps) * eps * detsum) & (detsum >= 2.0**-900)
    BLOCK = 1024
    orient_filter_kernel[(triton.cdiv(n, BLOCK),)](host_sign, host_certain, c, c, sign, certain, n, BLOCK=BLOCK)
    return sign, certain
