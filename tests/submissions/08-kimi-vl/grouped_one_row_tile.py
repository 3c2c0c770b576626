# cell: grouped_matmul
# breaks: test_grouped_matmul
# One launch, but no row tiling: BM = next_power_of_2(longest segment), so one program holds an
# expert's whole segment (512 rows for a segment of 300) and the grid has one row tile. Right values
# in the interpreter; on a GPU such a tile does not fit a program's registers.
@triton.jit
def _gmm_kernel(x_ptr, off_ptr, w_ptr, out_ptr,  # x (T, K), offsets (E + 1,), w (E, K, N), out (T, N)
                N, K,  # output columns, reduction length
                sxt, sxk, swe, swk, swn, sot, son,  # strides in elements
                BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, IEEE: tl.constexpr):
    tile, expert, col_tile = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    lo = tl.load(off_ptr + expert)
    count = tl.load(off_ptr + expert + 1) - lo
    if tile * BM < count:
        r = tile * BM + tl.arange(0, BM)
        c = col_tile * BN + tl.arange(0, BN)
        acc = tl.zeros([BM, BN], dtype=tl.float32)
        for k_start in range(0, K, BK):
            kk = k_start + tl.arange(0, BK)
            xa = tl.load(x_ptr + (lo + r)[:, None] * sxt + kk[None, :] * sxk,
                         mask=(r[:, None] < count) & (kk[None, :] < K), other=0.0)
            wb = tl.load(w_ptr + expert * swe + kk[:, None] * swk + c[None, :] * swn,
                         mask=(kk[:, None] < K) & (c[None, :] < N), other=0.0)
            if IEEE:
                acc += tl.dot(xa, wb, input_precision="ieee")
            else:
                acc += tl.dot(xa, wb)
        tl.store(out_ptr + (lo + r)[:, None] * sot + c[None, :] * son, acc.to(out_ptr.dtype.element_ty),
                 mask=(r[:, None] < count) & (c[None, :] < N))



def grouped_matmul(x_sorted, expert_offsets, w):
    if x_sorted.dim() != 2 or w.dim() != 3 or w.shape[1] != x_sorted.shape[1]:
        raise ValueError("need x_sorted (T, K) and w (E, K, N)")
    bounds = [int(v) for v in expert_offsets.reshape(-1).tolist()]
    t, k = x_sorted.shape
    n_experts, _, n = w.shape
    if len(bounds) != n_experts + 1 or bounds[0] != 0 or bounds[-1] != t or \
            any(b < a for a, b in zip(bounds[:-1], bounds[1:])):
        raise ValueError("expert_offsets must be E + 1 non-decreasing integers from 0 to T")
    out = torch.zeros(t, n, dtype=x_sorted.dtype, device=x_sorted.device)
    if t == 0 or k == 0 or n == 0:
        return out
    offs = torch.tensor(bounds, dtype=torch.int64, device=x_sorted.device)
    bm = triton.next_power_of_2(max(b - a for a, b in zip(bounds[:-1], bounds[1:])))
    grid = (1, n_experts, triton.cdiv(n, 32))
    _gmm_kernel[grid](x_sorted, offs, w, out, n, k, *x_sorted.stride(), *w.stride(), *out.stride(),
                      BM=bm, BN=32, BK=32, IEEE=x_sorted.dtype == torch.float32)
    return out
