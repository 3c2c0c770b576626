# cell: blocked_attention
# breaks: test_blocked_attention
# Two sweeps over the key blocks: the first finds the exact row maximum of the scores, the second
# sums e^(s - m) and accumulates the output with that fixed maximum, so nothing is ever rescaled.
# Right values and no N x N tensor, but every key block is read twice: the running max of the
# online softmax is skipped.
def blocked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_n: int,
                      causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    n_q, n_k = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    rows = torch.arange(n_q, device=q.device)[:, None]  # (Nq, 1)

    def scores(j):
        s = q @ k[..., j:j + block_n, :].transpose(-2, -1) * scale  # (Z, H, Nq, Bc)
        if causal:
            cols = torch.arange(j, min(j + block_n, n_k), device=q.device)[None, :]
            s = s.masked_fill(cols > rows, float("-inf"))
        return s

    m = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)
    for j in range(0, n_k, block_n):  # sweep 1: the exact maximum
        m = torch.maximum(m, scores(j).amax(dim=-1))
    l = torch.zeros_like(m)
    acc = torch.zeros_like(q)
    for j in range(0, n_k, block_n):  # sweep 2: sum and output, nothing rescaled
        p = torch.exp(scores(j) - m[..., None])
        l = l + p.sum(dim=-1)
        acc = acc + p @ v[..., j:j + block_n, :]
    return acc / l[..., None], m + torch.log(l)
