# cell: mla_decode_step
# breaks: test_mla_decode_step
# The absorbed weights in the wrong order: W_UV folded into the query and W_UK applied after the
# weighted sum. The shapes agree when d_nope = d_v, the values do not.
def mla_decode_step(x: torch.Tensor, c_cache: torch.Tensor, kr_cache: torch.Tensor, w: dict,
                    theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if c_cache.shape[0] != kr_cache.shape[0]:
        raise ValueError(f"c_cache has {c_cache.shape[0]} positions but kr_cache has {kr_cache.shape[0]}")
    pos = c_cache.shape[0]
    d_nope, d_rope = w["q_nope"].shape[2], w["q_rope"].shape[2]

    def rotate(v):  # (..., d_rope) at position pos
        half = torch.arange(d_rope // 2, dtype=torch.float64, device=v.device)
        angle = pos * theta ** (-2.0 * half / d_rope)
        cos, sin = angle.cos().to(v.dtype), angle.sin().to(v.dtype)
        even, odd = v[..., 0::2], v[..., 1::2]
        return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)

    latents = torch.cat([c_cache, (x @ w["dkv"]).unsqueeze(0)])  # (n, r)
    rope_keys = torch.cat([kr_cache, rotate(x @ w["kr"]).unsqueeze(0)])  # (n, d_rope)
    q_nope = torch.einsum("d,dhk->hk", x, w["q_nope"])  # (H, d_nope)
    q_rope = rotate(torch.einsum("d,dhk->hk", x, w["q_rope"]))  # (H, d_rope)
    q_latent = torch.einsum("hk,rhk->hr", q_nope, w["uv"])  # (H, r): W_UV folded into the query
    scores = (q_latent @ latents.T + q_rope @ rope_keys.T) / math.sqrt(d_nope + d_rope)  # (H, n)
    mixed = torch.softmax(scores, dim=-1) @ latents  # (H, r): the weighted latents
    heads = torch.einsum("hr,rhv->hv", mixed, w["uk"])  # (H, d_v): W_UK after the sum
    out = torch.einsum("hv,hvd->d", heads, w["o"])
    return out, latents, rope_keys
