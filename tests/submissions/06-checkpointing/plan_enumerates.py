# cell: min_peak_plan
# breaks: test_min_peak_plan
# Exact, but by trying all 2^n plans: fine for 8 layers, hopeless for 500 (the grader's line
# budget of 10 n^2 + 10^4 runs out).
def min_peak_plan(act_bytes: list[int]) -> tuple[int, list[int]]:
    n = len(act_bytes)
    if n == 0:
        raise ValueError("act_bytes is empty")
    if min(act_bytes) < 0:
        raise ValueError("sizes must be non-negative")
    best = (plan_peak(act_bytes, []), [])
    for r in range(1, n + 1):
        for kept in combinations(range(n), r):
            peak = plan_peak(act_bytes, list(kept))
            if peak < best[0]:
                best = (peak, list(kept))
    return best
