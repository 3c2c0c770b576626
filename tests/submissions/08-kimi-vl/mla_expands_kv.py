# cell: mla_decode_step
# breaks: test_mla_decode_step
# The right output the expanded way: every head's keys and values of the whole cache rebuilt from
# the latents (what MLA's absorption avoids), then ordinary attention.
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
    keys = torch.einsum("nr,rhk->hnk", latents, w["uk"])  # (H, n, d_nope): every head's keys
    values = torch.einsum("nr,rhv->hnv", latents, w["uv"])  # (H, n, d_v): every head's values
    scores = (torch.einsum("hk,hnk->hn", q_nope, keys) + q_rope @ rope_keys.T) / math.sqrt(d_nope + d_rope)
    heads = torch.einsum("hn,hnv->hv", torch.softmax(scores, dim=-1), values)  # (H, d_v)
    out = torch.einsum("hv,hvd->d", heads, w["o"])
    return out, latents, rope_keys
