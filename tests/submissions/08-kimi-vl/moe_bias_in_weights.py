# cell: moe_forward
# breaks: test_moe_forward
# The expert bias used in the combine weights as well as in the choice: the chosen experts are
# weighted by score + bias, so the bias changes what the layer computes, not only who computes it.
def moe_forward(x, router_w, w_gate, w_up, w_down, top_k: int, scoring: str = "softmax", norm_topk: bool = True,
                scale: float = 1.0, shared: tuple | None = None, bias: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    n_experts = router_w.shape[0]
    if not 1 <= top_k <= n_experts:
        raise ValueError(f"top_k = {top_k} is outside [1, {n_experts}]")
    if scoring not in ("softmax", "sigmoid"):
        raise ValueError(f"unknown scoring {scoring!r}")
    logits = x.float() @ router_w.float().t()  # (T, E)
    probs = torch.softmax(logits, dim=-1) if scoring == "softmax" else torch.sigmoid(logits)
    ranked = probs if bias is None else probs + bias.float()  # the bias moves the choice only
    chosen = ranked.sort(dim=-1, descending=True, stable=True).indices[:, :top_k]  # (T, k), ties: lower index
    gate = ranked.gather(1, chosen)  # the biased scores weight the experts
    if norm_topk:
        gate = gate / gate.sum(dim=-1, keepdim=True)
    gate = gate * scale
    flat = chosen.reshape(-1)  # (T k,) expert of each (token, slot)
    perm = flat.argsort(stable=True)  # pairs grouped by expert
    rows = perm // top_k  # token of each grouped pair
    counts = torch.bincount(flat, minlength=n_experts)
    out = torch.zeros_like(x)
    start = 0
    for e, n in enumerate(counts.tolist()):
        if n == 0:
            continue  # an idle expert; later ones may still have tokens
        tok = rows[start:start + n]
        xe = x[tok]  # (n, D)
        ye = (F.silu(xe @ w_gate[e]) * (xe @ w_up[e])) @ w_down[e]
        out.index_add_(0, tok, (ye * gate.reshape(-1)[perm[start:start + n], None]).to(x.dtype))
        start += n
    if shared is not None:
        sg, su, sd = shared
        out = out + (F.silu(x @ sg) * (x @ su)) @ sd
    return out, counts
