# cell: min_recompute_plan
# breaks: test_min_recompute_plan
# Exact, but by trying all 2^n plans: fine for 8 layers, hopeless for 40 (the grader's line budget
# of 10 n^2 (budget + 1) + 10^4 runs out). Written in plain Python, so only the work rule catches it.
def min_recompute_plan(act_bytes: list[int], flops: list[int], budget: int) -> tuple[int, list[int]]:
    n = len(act_bytes)
    if n == 0 or len(flops) != n:
        raise ValueError("act_bytes must be non-empty, and flops as long as it")
    a = [int(v) for v in act_bytes]
    f = [int(v) for v in flops]
    if min(a) < 0 or min(f) < 0:
        raise ValueError("sizes and FLOPs must be non-negative")
    best = None
    for mask in range(1 << n):
        held = peak = run = cost = 0
        for k in range(n):
            run += a[k]
            peak = max(peak, held + run)
            if mask >> k & 1:
                held += a[k]
                run = 0
            else:
                cost += f[k]
        if peak <= budget and (best is None or cost < best[0]):
            best = (cost, [k for k in range(n) if mask >> k & 1])
    if best is None:
        raise ValueError(f"no plan peaks at or below {budget}")
    return best
