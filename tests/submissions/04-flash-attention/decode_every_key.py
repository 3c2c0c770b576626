# cell: flash_decode
# breaks: test_flash_decode
# Right values: every program loops over all N_k keys of its head and masks the scores of the keys
# outside its split to -inf. But each program loads the whole row of keys, S times the traffic, and
# the split buys nothing: each program must read only its own split.
@triton.jit
def flash_decode_kernel(
    Q, K, V,  # q (Z, H, Nq, D), k and v (Z, H, Nk, D), contiguous
    O_PART, LSE_PART,  # (Z, H, S, Nq, D) and (Z, H, S, Nq) float32, contiguous: written, split s in [:, :, s]
    stride_qz, stride_qh, stride_qn, stride_qd,  # q.stride()
    stride_kz, stride_kh, stride_kn, stride_kd,  # k.stride()
    stride_vz, stride_vh, stride_vn, stride_vd,  # v.stride()
    H,  # number of heads
    n_q, n_k,  # number of queries, of keys
    n_splits,  # S = cdiv(n_k, SPLIT)
    sm_scale,  # 1 / sqrt(D)
    D: tl.constexpr,  # head dimension, a power of two >= 16
    BLOCK_M: tl.constexpr,  # query rows held, >= n_q and >= 16
    BLOCK_N: tl.constexpr,  # keys per loop step
    SPLIT: tl.constexpr,  # keys per split: program (s, zh) reads keys s * SPLIT .. (s + 1) * SPLIT - 1
    PRECISION: tl.constexpr,  # tl.dot's input_precision: "ieee" for float32
):
    s_id = tl.program_id(0)
    pid_zh = tl.program_id(1)
    z = pid_zh // H
    h = pid_zh % H
    offs_m = tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    q = tl.load(Q + z * stride_qz + h * stride_qh + offs_m[:, None] * stride_qn + offs_d[None, :] * stride_qd,
                mask=offs_m[:, None] < n_q, other=0.0)  # (BLOCK_M, D)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, D], dtype=tl.float32)
    first = s_id * SPLIT
    end = tl.minimum(first + SPLIT, n_k)  # one past this split's last key
    for start in range(0, n_k, BLOCK_N):  # every key of the head
        keys = start + offs_n  # (BLOCK_N,)
        ok = (keys >= first) & (keys < end)  # ... and only this split's count
        kt = tl.load(K + z * stride_kz + h * stride_kh + keys[None, :] * stride_kn + offs_d[:, None] * stride_kd,
                     mask=keys[None, :] < n_k, other=0.0)  # (D, BLOCK_N)
        scores = tl.where(ok[None, :], tl.dot(q, kt, input_precision=PRECISION) * sm_scale, float("-inf"))
        m_next = tl.maximum(m_i, tl.max(scores, 1))
        shift = tl.where(m_next == float("-inf"), 0.0, m_next)  # no key of the split seen yet: shift by 0
        rescale = tl.exp(m_i - shift)
        p = tl.exp(scores - shift[:, None])  # (BLOCK_M, BLOCK_N)
        vb = tl.load(V + z * stride_vz + h * stride_vh + keys[:, None] * stride_vn + offs_d[None, :] * stride_vd,
                     mask=keys[:, None] < n_k, other=0.0)  # (BLOCK_N, D)
        acc = acc * rescale[:, None] + tl.dot(p.to(vb.dtype), vb, input_precision=PRECISION)
        l_i = l_i * rescale + tl.sum(p, 1)
        m_i = m_next
    part = (pid_zh * n_splits + s_id) * n_q + offs_m  # rows of the flattened (Z * H * S * Nq) partials
    tl.store(O_PART + part[:, None] * D + offs_d[None, :], acc / l_i[:, None], mask=offs_m[:, None] < n_q)
    tl.store(LSE_PART + part, m_i + tl.log(l_i), mask=offs_m < n_q)


def flash_decode(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 num_splits: int) -> tuple[torch.Tensor, torch.Tensor]:
    z, h, n_q, d = q.shape
    n_k = k.shape[-2]
    split = triton.cdiv(n_k, num_splits)
    n_splits = triton.cdiv(n_k, split)
    o_part = torch.empty((z, h, n_splits, n_q, d), dtype=torch.float32, device=q.device)
    lse_part = torch.empty((z, h, n_splits, n_q), dtype=torch.float32, device=q.device)
    flash_decode_kernel[(n_splits, z * h)](
        q, k, v, o_part, lse_part, *q.stride(), *k.stride(), *v.stride(), h, n_q, n_k, n_splits,
        1.0 / math.sqrt(d), D=d, BLOCK_M=max(16, triton.next_power_of_2(n_q)), BLOCK_N=64, SPLIT=split,
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
    )
    top = lse_part.amax(dim=2, keepdim=True)  # (Z, H, 1, Nq): the largest split's lse
    w = torch.exp(lse_part - top)  # (Z, H, S, Nq): each split's share, relative to the largest
    total = w.sum(dim=2)  # (Z, H, Nq)
    o = (w[..., None] * o_part).sum(dim=2) / total[..., None]
    return o.to(q.dtype), top[:, :, 0] + torch.log(total)
