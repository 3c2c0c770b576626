# cell: triton_merge
# breaks: test_triton_merge
# Right output from one launch of a kernel that does all the work, but not merge path: every lane
# takes one INPUT element, finds its rank in the other tensor by a binary search over all of it
# (a[i] goes to i + #(b < a[i]), b[j] to j + #(a <= b[j])) and scatters it there. No co-ranks, no
# tiles of outputs: each program's stores land all over the output.
@triton.jit
def merge_kernel(
    a_ptr,  # *T: sorted, m elements
    b_ptr,  # *T: sorted, n elements
    out_ptr,  # *T: m + n elements, written by the kernel
    m,  # len(a)
    n,  # len(b)
    BLOCK: tl.constexpr,  # input elements per program, a power of two
    R_TILE: tl.constexpr,  # binary-search rounds: bit_length(m + n) + 1 (more than the corners need)
):
    k = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)  # (BLOCK,): elements of a, then of b
    valid = k < m + n
    from_a = k < m
    own = tl.where(from_a, k, k - m)  # index in its own tensor
    x = tl.where(from_a, tl.load(a_ptr + own, mask=valid & from_a, other=0),
                 tl.load(b_ptr + own, mask=valid & ~from_a, other=0))
    size = tl.where(from_a, n, m)  # length of the other tensor
    lo = tl.zeros_like(k)  # count of the other tensor's elements that go before x
    hi = size
    for _ in range(R_TILE):
        active = valid & (lo < hi)
        mid = (lo + hi) // 2
        y = tl.where(from_a, tl.load(b_ptr + mid, mask=active & from_a, other=0),
                     tl.load(a_ptr + mid, mask=active & ~from_a, other=0))
        before = tl.where(from_a, y < x, y <= x)  # ties: a's elements first
        lo = tl.where(active & before, mid + 1, lo)
        hi = tl.where(active & ~before, mid, hi)
    tl.store(out_ptr + own + lo, x, mask=valid)


def triton_merge(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    m, n = a.numel(), b.numel()
    out = torch.empty(m + n, dtype=a.dtype, device=a.device)
    if m + n == 0:
        return out
    BLOCK = 256
    merge_kernel[(triton.cdiv(m + n, BLOCK),)](a, b, out, m, n, BLOCK=BLOCK, R_TILE=(m + n).bit_length() + 1)
    return out
