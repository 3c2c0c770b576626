# cell: model_state_bytes
# breaks: test_model_state_bytes
# 18-byte accounting: gradients counted in fp32 (4 bytes), so a 7B model "needs" 126 GB.
def model_state_bytes(n_params, zero_stage, dp, optimizer_bytes=12, offload=False):
    if isinstance(zero_stage, bool) or zero_stage not in (0, 1, 2, 3) or dp < 1 or n_params < 0 or optimizer_bytes < 0:
        raise ValueError("bad arguments")
    if n_params != int(n_params) or dp != int(dp):
        raise ValueError("whole numbers only")
    n, dp = int(n_params), int(dp)
    shard = -(-n // dp)
    out = {"params": 2 * (shard if zero_stage == 3 else n), "grads": 4 * (shard if zero_stage >= 2 else n),
           "optimizer": 0 if offload else int(optimizer_bytes) * (shard if zero_stage >= 1 else n)}
    out["total"] = sum(out.values())
    return out
