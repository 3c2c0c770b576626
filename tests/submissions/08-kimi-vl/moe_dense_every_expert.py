# cell: moe_forward
# breaks: test_moe_forward
# Every expert runs on every token, then the routing weights mask: right values, E / top_k times the cost.
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
    gate = torch.zeros_like(probs).scatter(1, chosen, gate * scale)  # (T, E)
    out = torch.zeros_like(x)
    for e in range(n_experts):
        out = out + (gate[:, e:e + 1] * ((F.silu(x @ w_gate[e]) * (x @ w_up[e])) @ w_down[e])).to(x.dtype)
    if shared is not None:
        out = out + (F.silu(x @ shared[0]) * (x @ shared[1])) @ shared[2]
    return out, torch.bincount(chosen.reshape(-1), minlength=n_experts)
