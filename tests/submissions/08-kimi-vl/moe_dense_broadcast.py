# cell: moe_forward
# breaks: test_moe_forward
# Every expert on every token again, written with broadcasting instead of matmuls: (T, E, D, F)
# products summed over D. No matmul runs for the experts, so the FLOP budget (matmuls only) passes;
# the intermediates hold T E D F elements.
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
    h = (x[:, None, :, None] * w_gate[None]).sum(2)  # (T, E, F)
    u = (x[:, None, :, None] * w_up[None]).sum(2)
    y = ((F.silu(h) * u)[..., None] * w_down[None]).sum(2)  # (T, E, D)
    out = (weights[..., None] * y).sum(1).to(x.dtype)
    if shared is not None:
        out = out + (F.silu(x @ shared[0]) * (x @ shared[1])) @ shared[2]
    return out, torch.bincount(chosen.reshape(-1), minlength=n_experts)
