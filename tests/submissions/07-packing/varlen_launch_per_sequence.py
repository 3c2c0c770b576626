# cell: varlen_attention
# breaks: test_varlen_attention
# The right kernel, launched once per sequence from a host loop: each launch gets a grid of one
# sequence and the view cu_seqlens[s:], so the kernel reads that sequence as its sequence 0. Right
# values from N launches, where one launch with a grid axis over the sequences does it all.
@triton.jit
def varlen_kernel(
    Q, K, V, O,  # (T, H, D) packed tokens; O is written
    CU,  # (N + 1,) int32 cu_seqlens
    stride_t, stride_h,  # strides of a token and of a head, shared by q, k, v and O (contiguous, last dim 1)
    scale,  # softmax scale
    D: tl.constexpr,  # head dimension
    BLOCK_M: tl.constexpr,  # queries per program
    BLOCK_N: tl.constexpr,  # keys per loop step
    CAUSAL: tl.constexpr,  # key j <= query i within the sequence
    PRECISION: tl.constexpr,  # tl.dot's input_precision
):
    block = tl.program_id(0)
    seq = tl.program_id(1)
    head = tl.program_id(2)
    first = tl.load(CU + seq)
    length = tl.load(CU + seq + 1) - first
    if block * BLOCK_M < length:
        i = block * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,) query positions in the sequence
        dims = tl.arange(0, D)
        base = first * stride_t + head * stride_h
        q_rows = i[:, None] < length
        q = tl.load(Q + base + i[:, None] * stride_t + dims[None, :], mask=q_rows, other=0.0).to(tl.float32)
        row_max = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
        row_sum = tl.zeros([BLOCK_M], dtype=tl.float32)
        acc = tl.zeros([BLOCK_M, D], dtype=tl.float32)
        end = tl.minimum((block + 1) * BLOCK_M, length) if CAUSAL else length
        for j0 in range(0, end, BLOCK_N):
            j = j0 + tl.arange(0, BLOCK_N)  # (BLOCK_N,) key positions
            k_cols = j[:, None] < length
            k = tl.load(K + base + j[:, None] * stride_t + dims[None, :], mask=k_cols, other=0.0).to(tl.float32)
            v = tl.load(V + base + j[:, None] * stride_t + dims[None, :], mask=k_cols, other=0.0).to(tl.float32)
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale  # (BLOCK_M, BLOCK_N)
            visible = j[None, :] < length
            if CAUSAL:
                visible = visible & (j[None, :] <= i[:, None])
            s = tl.where(visible, s, float("-inf"))
            new_max = tl.maximum(row_max, tl.max(s, 1))
            p = tl.exp(s - new_max[:, None])
            rescale = tl.exp(row_max - new_max)
            row_sum = row_sum * rescale + tl.sum(p, 1)
            acc = acc * rescale[:, None] + tl.dot(p, v, input_precision=PRECISION)
            row_max = new_max
        out = acc / row_sum[:, None]
        tl.store(O + base + i[:, None] * stride_t + dims[None, :], out.to(O.dtype.element_ty), mask=q_rows)



def varlen_attention(q, k, v, cu_seqlens, max_seqlen, causal=False, scale=None):
    t, h, d = q.shape
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty_like(q)
    for s in range(cu_seqlens.numel() - 1):
        length = int(cu_seqlens[s + 1]) - int(cu_seqlens[s])
        if length == 0:
            continue
        varlen_kernel[(triton.cdiv(length, 64), 1, h)](
            q, k, v, out, cu_seqlens[s:], q.stride(0), q.stride(1), 1.0 / math.sqrt(d) if scale is None else scale,
            D=d, BLOCK_M=64, BLOCK_N=64, CAUSAL=causal, PRECISION="ieee")
    return out
