# cell: mla_decode_step
# breaks: test_mla_decode_step
# RoPE applied to the compressed part: the latent-space query and every cached latent are rotated by
# their positions, as if the latent were a key. Scores then depend on positions through the wrong
# channels (the decoupled rope key is the only place a position may enter).
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
    q_latent = torch.einsum("hk,rhk->hr", q_nope, w["uk"])  # (H, r): W_UK folded into the query
    r = latents.shape[1]
    ang = torch.arange(latents.shape[0], dtype=torch.float64)[:, None] * theta ** (
        -2.0 * torch.arange(r // 2, dtype=torch.float64) / r)  # (n, r/2): position j's angles
    zc = torch.view_as_complex(latents.reshape(-1, r // 2, 2).contiguous()) * torch.polar(
        torch.ones_like(ang), ang).to(torch.complex64 if latents.dtype == torch.float32 else torch.complex128)
    zq = torch.view_as_complex(q_latent.reshape(-1, r // 2, 2).contiguous()) * torch.polar(
        torch.ones_like(ang[-1]), ang[-1]).to(zc.dtype)  # the query rotated at position T
    rot_scores = (zq[:, None, :] * zc.conj()[None]).real.sum(-1)  # (H, n): rotated latents
    scores = (rot_scores + q_rope @ rope_keys.T) / math.sqrt(d_nope + d_rope)  # (H, n)
    mixed = torch.softmax(scores, dim=-1) @ latents  # (H, r): the weighted latents
    heads = torch.einsum("hr,rhv->hv", mixed, w["uv"])  # (H, d_v): W_UV after the sum
    out = torch.einsum("hv,hvd->d", heads, w["o"])
    return out, latents, rope_keys
