# cell: moe_forward
# breaks: test_moe_forward
# The dispatch loop stops at the first expert with no tokens, dropping every expert after it.
def moe_forward(x, router_w, w_gate, w_up, w_down, top_k, scoring="softmax", norm_topk=True, scale=1.0, shared=None,
                bias=None):
    n_experts = router_w.shape[0]
    if not 1 <= top_k <= n_experts or scoring not in ("softmax", "sigmoid"):
        raise ValueError("bad top_k or scoring")
    logits = x.float() @ router_w.float().t()
    probs = logits.softmax(-1) if scoring == "softmax" else logits.sigmoid()
    chosen = (probs if bias is None else probs + bias).sort(dim=-1, descending=True, stable=True).indices[:, :top_k]
    gate = probs.gather(1, chosen)
    if norm_topk:
        gate = gate / gate.sum(-1, keepdim=True)
    gate = gate * scale
    flat = chosen.reshape(-1)
    perm = flat.argsort(stable=True)
    rows = perm // top_k
    counts = torch.bincount(flat, minlength=n_experts)
    out = torch.zeros_like(x)
    start = 0
    for e, n in enumerate(counts.tolist()):
        if n == 0:
            break
        tok = rows[start:start + n]
        ye = (F.silu(x[tok] @ w_gate[e]) * (x[tok] @ w_up[e])) @ w_down[e]
        out.index_add_(0, tok, (ye * gate.reshape(-1)[perm[start:start + n], None]).to(x.dtype))
        start += n
    if shared is not None:
        out = out + (F.silu(x @ shared[0]) * (x @ shared[1])) @ shared[2]
    return out, counts
