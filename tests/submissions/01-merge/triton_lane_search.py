# cell: triton_merge
# breaks: test_triton_merge
# Right output, by merge path on tiles, but with the naive second level: after the corner searches
# every lane binary-searches its own co-rank in global memory, inside its window of the tile, two
# dependent loads a round (about 2 log2(BLOCK) + 2 elements read per output instead of one): the
# tile is never loaded once and ranked inside, so the load rule fails.
@triton.jit
def merge_kernel(
    a_ptr,  # *T: sorted, m elements
    b_ptr,  # *T: sorted, n elements
    out_ptr,  # *T: m + n elements, written by the kernel
    m,  # len(a)
    n,  # len(b)
    BLOCK: tl.constexpr,  # outputs per program, a power of two, 64 to 256
    R_TILE: tl.constexpr,  # corner-search rounds: min(m, n).bit_length()
):
    pid = tl.program_id(0)
    d0 = pid * BLOCK
    d1 = tl.minimum(d0 + BLOCK, m + n)
    pair = tl.arange(0, 2)
    dd = tl.where(pair == 0, d0, d1)  # (2,)
    lo = tl.maximum(dd - n, 0)
    hi = tl.minimum(dd, m)
    for _ in range(R_TILE):
        active = lo < hi
        mid = (lo + hi + 1) // 2
        a_prev = tl.load(a_ptr + mid - 1, mask=active, other=0)
        b_here = tl.load(b_ptr + dd - mid, mask=active, other=0)
        too_far = active & (a_prev > b_here)
        hi = tl.where(too_far, mid - 1, hi)
        lo = tl.where(active & ~too_far, mid, lo)
    i0 = tl.sum(tl.where(pair == 0, lo, 0), axis=0)
    i1 = tl.sum(tl.where(pair == 1, lo, 0), axis=0)
    j0 = d0 - i0
    j1 = d1 - i1
    # every lane searches its own diagonal inside the tile, in global memory
    d = d0 + tl.arange(0, BLOCK)  # (BLOCK,)
    valid = d < d1
    lo = tl.where(valid, tl.maximum(i0, d - j1), i0)
    hi = tl.where(valid, tl.minimum(i1, d - j0), i0)
    for _ in range(8):  # log2(BLOCK) rounds: a window holds at most BLOCK / 2 + 1 points (BLOCK <= 256)
        active = lo < hi
        mid = (lo + hi + 1) // 2
        a_prev = tl.load(a_ptr + mid - 1, mask=active, other=0)
        b_here = tl.load(b_ptr + d - mid, mask=active, other=0)
        too_far = active & (a_prev > b_here)
        hi = tl.where(too_far, mid - 1, hi)
        lo = tl.where(active & ~too_far, mid, lo)
    i = lo
    j = d - i
    a_i = tl.load(a_ptr + i, mask=valid & (i < i1), other=0)
    b_j = tl.load(b_ptr + j, mask=valid & (j < j1), other=0)
    take_a = (i < i1) & ((j >= j1) | (a_i <= b_j))  # ties from a: stable
    tl.store(out_ptr + d, tl.where(take_a, a_i, b_j), mask=valid)


def triton_merge(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    m, n = a.numel(), b.numel()
    out = torch.empty(m + n, dtype=a.dtype, device=a.device)
    if m + n == 0:
        return out
    BLOCK = 256
    grid = (triton.cdiv(m + n, BLOCK),)
    merge_kernel[grid](a, b, out, m, n, BLOCK=BLOCK, R_TILE=min(m, n).bit_length())
    return out
