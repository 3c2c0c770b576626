# cell: blocked_attention
# breaks: test_blocked_attention
# The scores are never scaled by 1/sqrt(D).
def blocked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_n: int,
                      causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    n_q, n_k = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    m = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)  # (Z, H, Nq)
    l = torch.zeros_like(m)
    acc = torch.zeros_like(q)  # (Z, H, Nq, D)
    rows = torch.arange(n_q, device=q.device)[:, None]  # (Nq, 1)
    for j in range(0, n_k, block_n):
        s = q @ k[..., j:j + block_n, :].transpose(-2, -1)  # (Z, H, Nq, Bc)
        if causal:
            cols = torch.arange(j, min(j + block_n, n_k), device=q.device)[None, :]  # (1, Bc)
            s = s.masked_fill(cols > rows, float("-inf"))
        m_new = torch.maximum(m, s.amax(dim=-1))  # finite: the first block holds key 0
        alpha = torch.exp(m - m_new)
        p = torch.exp(s - m_new[..., None])
        l = l * alpha + p.sum(dim=-1)
        acc = acc * alpha[..., None] + p @ v[..., j:j + block_n, :]
        m = m_new
    return acc / l[..., None], m + torch.log(l)
    ### END SOLUTION