# cell: flash_attn_fwd
# breaks: test_flash_attn_fwd
# A key loop in blocks of 64, but two sweeps over the keys: the first finds the exact row max, the
# second sums and accumulates with it, so nothing is ever rescaled. Right values, one launch; but
# every K block is loaded twice, one more pass over K than Algorithm 5's single sweep with a
# running max.
@triton.jit
def flash_fwd_kernel(
    Q, K, V, O,  # q (Z, H, Nq, D), k and v (Z, H, Nk, D), O (Z, H, Nq, D): written
    LSE,  # (Z, H, Nq) float32, contiguous: written, logsumexp of each row's scaled scores
    stride_qz, stride_qh, stride_qn, stride_qd,  # q.stride()
    stride_kz, stride_kh, stride_kn, stride_kd,  # k.stride()
    stride_vz, stride_vh, stride_vn, stride_vd,  # v.stride()
    stride_oz, stride_oh, stride_on, stride_od,  # O.stride()
    H,  # number of heads
    n_q, n_k,  # number of queries, of keys
    sm_scale,  # 1 / sqrt(D)
    D: tl.constexpr,  # head dimension, a power of two >= 16
    BLOCK_M: tl.constexpr,  # queries per program
    BLOCK_N: tl.constexpr,  # keys per loop step
    CAUSAL: tl.constexpr,  # query i sees keys j <= i only
    PRECISION: tl.constexpr,  # tl.dot's input_precision: "ieee" for float32, "tf32" otherwise
):
    pid_m = tl.program_id(0)
    pid_zh = tl.program_id(1)
    z = pid_zh // H
    h = pid_zh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,)
    offs_n = tl.arange(0, BLOCK_N)  # (BLOCK_N,)
    offs_d = tl.arange(0, D)  # (D,)
    q = tl.load(Q + z * stride_qz + h * stride_qh + offs_m[:, None] * stride_qn + offs_d[None, :] * stride_qd,
                mask=offs_m[:, None] < n_q, other=0.0)  # (BLOCK_M, D)
    k_base = K + z * stride_kz + h * stride_kh
    v_base = V + z * stride_vz + h * stride_vh
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, D], dtype=tl.float32)
    qk_scale = sm_scale * 1.4426950408889634  # log2(e): exp(x) = exp2(x * log2(e))
    hi = tl.minimum((pid_m + 1) * BLOCK_M, n_k) if CAUSAL else n_k
    for start_n in range(0, hi, BLOCK_N):  # sweep 1: the exact row max
        cols = start_n + offs_n  # (BLOCK_N,)
        k = tl.load(k_base + cols[None, :] * stride_kn + offs_d[:, None] * stride_kd,
                    mask=cols[None, :] < n_k, other=0.0)  # (D, BLOCK_N)
        s = tl.dot(q, k, input_precision=PRECISION) * qk_scale
        keep = cols[None, :] < n_k
        if CAUSAL:
            keep = keep & (cols[None, :] <= offs_m[:, None])
        m_i = tl.maximum(m_i, tl.max(tl.where(keep, s, float("-inf")), 1))
    for start_n in range(0, hi, BLOCK_N):  # sweep 2: sum and output with the final max, nothing rescaled
        cols = start_n + offs_n
        k = tl.load(k_base + cols[None, :] * stride_kn + offs_d[:, None] * stride_kd,
                    mask=cols[None, :] < n_k, other=0.0)
        s = tl.dot(q, k, input_precision=PRECISION) * qk_scale
        keep = cols[None, :] < n_k
        if CAUSAL:
            keep = keep & (cols[None, :] <= offs_m[:, None])
        p = tl.math.exp2(tl.where(keep, s, float("-inf")) - m_i[:, None])
        l_i += tl.sum(p, 1)
        v = tl.load(v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd,
                    mask=cols[:, None] < n_k, other=0.0)  # (BLOCK_N, D)
        acc += tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    acc = acc / l_i[:, None]
    lse = (m_i + tl.math.log2(l_i)) * 0.6931471805599453  # ln(2): back to natural log
    tl.store(O + z * stride_oz + h * stride_oh + offs_m[:, None] * stride_on + offs_d[None, :] * stride_od,
             acc.to(O.dtype.element_ty), mask=offs_m[:, None] < n_q)
    tl.store(LSE + pid_zh * n_q + offs_m, lse, mask=offs_m < n_q)


def flash_attn_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    z, h, n_q, d = q.shape
    n_k = k.shape[-2]
    o = torch.empty((z, h, n_q, d), dtype=q.dtype, device=q.device)
    lse = torch.empty((z, h, n_q), dtype=torch.float32, device=q.device)
    BLOCK_M, BLOCK_N = 64, 64
    grid = (triton.cdiv(n_q, BLOCK_M), z * h)
    flash_fwd_kernel[grid](
        q, k, v, o, lse, *q.stride(), *k.stride(), *v.stride(), *o.stride(), h, n_q, n_k, 1.0 / math.sqrt(d),
        D=d, BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, CAUSAL=causal,
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
    )
    return o, lse
