# cell: varlen_attention
# breaks: test_varlen_attention
# Masks at the end of the packed tensor (T), not at each sequence's end: a tail block reads the
# next sequence's keys and writes over its rows.
@triton.jit
def varlen_kernel(Q, K, V, O, CU, T, stride_t, stride_h, scale, D: tl.constexpr, BLOCK_M: tl.constexpr,
                  BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr):
    block, seq, head = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    first = tl.load(CU + seq)
    length = tl.load(CU + seq + 1) - first
    if block * BLOCK_M < length:
        i = block * BLOCK_M + tl.arange(0, BLOCK_M)
        dims = tl.arange(0, D)
        base = first * stride_t + head * stride_h
        rows = first + i[:, None] < T
        q = tl.load(Q + base + i[:, None] * stride_t + dims[None, :], mask=rows, other=0.0)
        row_max = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
        row_sum = tl.zeros([BLOCK_M], dtype=tl.float32)
        acc = tl.zeros([BLOCK_M, D], dtype=tl.float32)
        for j0 in range(0, length, BLOCK_N):
            j = j0 + tl.arange(0, BLOCK_N)
            cols = first + j[:, None] < T
            k = tl.load(K + base + j[:, None] * stride_t + dims[None, :], mask=cols, other=0.0)
            v = tl.load(V + base + j[:, None] * stride_t + dims[None, :], mask=cols, other=0.0)
            s = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
            visible = first + j[None, :] < T
            if CAUSAL:
                visible = visible & (j[None, :] <= i[:, None])
            s = tl.where(visible, s, float("-inf"))
            new_max = tl.maximum(row_max, tl.max(s, 1))
            p = tl.exp(s - new_max[:, None])
            rescale = tl.exp(row_max - new_max)
            row_sum = row_sum * rescale + tl.sum(p, 1)
            acc = acc * rescale[:, None] + tl.dot(p, v, input_precision="ieee")
            row_max = new_max
        tl.store(O + base + i[:, None] * stride_t + dims[None, :], acc / row_sum[:, None], mask=rows)


def varlen_attention(q, k, v, cu_seqlens, max_seqlen, causal=False, scale=None):
    t, h, d = q.shape
    out = torch.empty_like(q)
    if t == 0 or max_seqlen < 1:
        return out
    grid = (triton.cdiv(max_seqlen, 64), cu_seqlens.numel() - 1, h)
    varlen_kernel[grid](q, k, v, out, cu_seqlens, t, q.stride(0), q.stride(1), scale or d ** -0.5,
                        D=d, BLOCK_M=64, BLOCK_N=64, CAUSAL=causal)
    return out
