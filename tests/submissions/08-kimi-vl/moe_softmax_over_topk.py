# cell: moe_forward
# breaks: test_moe_forward
# Softmax over the top-k logits only: right when norm_topk renormalises anyway, wrong without it.
def moe_forward(x, router_w, w_gate, w_up, w_down, top_k, scoring="softmax", norm_topk=True, scale=1.0, shared=None,
                bias=None):
    n_experts = router_w.shape[0]
    if not 1 <= top_k <= n_experts or scoring not in ("softmax", "sigmoid"):
        raise ValueError("bad top_k or scoring")
    logits = x.float() @ router_w.float().t()
    chosen = (logits if bias is None else logits + bias).sort(dim=-1, descending=True, stable=True).indices[:, :top_k]
    top = logits.gather(1, chosen)
    gate = top.softmax(-1) if scoring == "softmax" else top.sigmoid()
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
        tok = rows[start:start + n]
        ye = (F.silu(x[tok] @ w_gate[e]) * (x[tok] @ w_up[e])) @ w_down[e]
        out.index_add_(0, tok, (ye * gate.reshape(-1)[perm[start:start + n], None]).to(x.dtype))
        start += n
    if shared is not None:
        out = out + (F.silu(x @ shared[0]) * (x @ shared[1])) @ shared[2]
    return out, counts
