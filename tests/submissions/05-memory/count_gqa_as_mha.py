# cell: count_params
# breaks: test_count_params
# GQA counted as full multi-head attention: k and v taken as h x h whatever num_kv_heads says.
def count_params(cfg):
    V, h, inter, L = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"], cfg["num_layers"]
    heads, kv = cfg["num_heads"], cfg["num_kv_heads"]
    if min(V, h, inter, L) < 0 or heads < 1 or kv < 1 or h % heads or heads % kv:
        raise ValueError("bad config")
    head = 0 if cfg.get("tie_embeddings", False) else V * h
    return L * (4 * h * h + 3 * h * inter + 2 * h) + h + V * h + head
