# cell: activation_bytes
# breaks: test_activation_bytes
# The paper's factored form s b h (34 + 5 a s / h) in floating point: off when h does not divide
# 5 a s, and far off beyond 2^53.
def activation_bytes(seq, batch, hidden, heads, layers, recompute="none"):
    if min(seq, batch, hidden, heads, layers) < 0 or any(x != int(x) for x in (seq, batch, hidden, heads, layers)):
        raise ValueError("dimensions must be whole numbers >= 0")
    if recompute not in ("none", "selective", "full") or not isinstance(recompute, str):
        raise ValueError("recompute must be 'none', 'selective' or 'full'")
    s, b, h, a = seq, batch, hidden, heads
    per_layer = {"none": s * b * h * (34 + 5 * a * s / h), "selective": 34 * s * b * h, "full": 2 * s * b * h}
    return int(layers * per_layer[recompute])
