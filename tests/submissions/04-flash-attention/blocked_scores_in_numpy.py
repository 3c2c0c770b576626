# cell: blocked_attention
# breaks: test_blocked_attention
# Right values, and no torch op ever touches N_q x N_k elements: the whole score matrix is built
# in NumPy instead, where a recorder of torch ops cannot see it: NumPy is refused by name, and the
# host-memory measure sees it too.
import numpy as np


def blocked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_n: int,
                      causal: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    qn, kn, vn = q.cpu().numpy(), k.cpu().numpy(), v.cpu().numpy()
    s = qn @ np.swapaxes(kn, -1, -2) / math.sqrt(qn.shape[-1])  # (Z, H, Nq, Nk), outside torch
    if causal:
        s = np.where(np.triu(np.ones(s.shape[-2:], bool), k=1), -np.inf, s)
    m = s.max(axis=-1, keepdims=True)
    p = np.exp(s - m)
    l = p.sum(axis=-1, keepdims=True)
    o, lse = (p / l) @ vn, (m + np.log(l))[..., 0]
    return torch.from_numpy(o).to(q.device), torch.from_numpy(lse).to(q.device)
