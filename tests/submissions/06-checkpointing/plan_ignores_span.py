# cell: min_peak_plan
# breaks: test_min_peak_plan
# Minimises the bytes kept and forgets the span being recomputed: keeping nothing looks free.
def min_peak_plan(act_bytes: list[int]) -> tuple[int, list[int]]:
    n = len(act_bytes)
    if n == 0:
        raise ValueError("act_bytes is empty")
    if min(act_bytes) < 0:
        raise ValueError("sizes must be non-negative")
    a = [0, *(int(v) for v in act_bytes), 0]
    best, nxt = [0] * (n + 2), [n + 1] * (n + 2)
    for i in range(n, -1, -1):
        top = None
        for j in range(i + 1, n + 2):
            cost = a[j] + best[j]  # only what is kept
            if top is None or cost < top:
                top, nxt[i] = cost, j
        best[i] = top
    plan, j = [], nxt[0]
    while j <= n:
        plan.append(j - 1)
        j = nxt[j]
    return best[0], plan
