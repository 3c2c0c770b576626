# cell: min_recompute_plan
# breaks: test_min_recompute_plan
# The table without the constraint: every next kept layer is allowed whatever the span costs on top
# of the bytes held, so the plan keeps every output (nothing recomputed) and peaks above the budget.
def min_recompute_plan(act_bytes: list[int], flops: list[int], budget: int) -> tuple[int, list[int]]:
    n = len(act_bytes)
    if n == 0 or len(flops) != n:
        raise ValueError("act_bytes must be non-empty, and flops as long as it")
    a = [0, *(int(v) for v in act_bytes), 0]
    f = [0, *(int(v) for v in flops), 0]
    if min(a) < 0 or min(f) < 0:
        raise ValueError("sizes and FLOPs must be non-negative")
    pf = [0] * (n + 2)
    for k in range(1, n + 2):
        pf[k] = pf[k - 1] + f[k]
    least, step = [0] * (n + 2), [n + 1] * (n + 2)
    for i in range(n, -1, -1):
        best = None
        for j in range(i + 1, n + 2):
            c = pf[j - 1] - pf[i] + least[j]
            if best is None or c < best:
                best, step[i] = c, j
        least[i] = best
    plan, i = [], 0
    while step[i] <= n:
        i = step[i]
        plan.append(i - 1)
    return least[0], plan
