# cell: moe_forward
# breaks: test_moe_forward
# Every expert on every token as elementwise multiply-adds over D and F: no matmul for the experts
# and no tensor larger than (T, F), so neither the FLOP budget nor the largest intermediate sees it;
# the elements written (E D T F multiply-adds) are the dense pass's.
def moe_forward(x, router_w, w_gate, w_up, w_down, top_k, scoring="softmax", norm_topk=True, scale=1.0, shared=None,
                bias=None):
    n_experts = router_w.shape[0]
    if not 1 <= top_k <= n_experts or scoring not in ("softmax", "sigmoid"):
        raise ValueError("bad top_k or scoring")
    logits = x.float() @ router_w.float().t()
    probs = logits.softmax(-1) if scoring == "softmax" else logits.sigmoid()
    chosen = (probs if bias is None else probs + bias).sort(dim=-1, descending=True, stable=True).indices[:, :top_k]  # (T, k)
    gate = probs.gather(1, chosen)
    if norm_topk:
        gate = gate / gate.sum(-1, keepdim=True)
    gate = gate * scale
    weights = torch.zeros_like(probs).scatter(1, chosen, gate)  # (T, E)
    out = torch.zeros_like(x)
    for e in range(n_experts):
        h = torch.zeros(x.shape[0], w_gate.shape[2], dtype=x.dtype)
        u = torch.zeros_like(h)
        for d in range(x.shape[1]):
            h = h + x[:, d:d + 1] * w_gate[e, d]
            u = u + x[:, d:d + 1] * w_up[e, d]
        a = F.silu(h) * u  # (T, F)
        y = torch.zeros_like(x)
        for f in range(a.shape[1]):
            y = y + a[:, f:f + 1] * w_down[e, f]
        out = out + (weights[:, e:e + 1] * y).to(x.dtype)
    if shared is not None:
        out = out + (F.silu(x @ shared[0]) * (x @ shared[1])) @ shared[2]
    return out, torch.bincount(chosen.reshape(-1), minlength=n_experts)
