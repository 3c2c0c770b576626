# cell: min_recompute_plan
# breaks: test_min_recompute_plan
# Minimises the peak instead of the recomputation: the min-peak programme R(i) = min over j of
# max(span (i, j], a_j + R(j)), raising only when even that peak exceeds the budget. Its plan fits
# whenever any plan does, but it drops layers that the budget would let it keep.
def min_recompute_plan(act_bytes: list[int], flops: list[int], budget: int) -> tuple[int, list[int]]:
    n = len(act_bytes)
    if n == 0 or len(flops) != n:
        raise ValueError("act_bytes must be non-empty, and flops as long as it")
    a = [0, *(int(v) for v in act_bytes), 0]
    f = [int(v) for v in flops]
    if min(a) < 0 or min(f) < 0:
        raise ValueError("sizes and FLOPs must be non-negative")
    prefix = [0] * (n + 2)
    for k in range(1, n + 2):
        prefix[k] = prefix[k - 1] + a[k]
    best, nxt = [0] * (n + 2), [n + 1] * (n + 2)
    for i in range(n, -1, -1):
        top = None
        for j in range(i + 1, n + 2):
            cost = max(prefix[j] - prefix[i], a[j] + best[j])
            if top is None or cost < top:
                top, nxt[i] = cost, j
        best[i] = top
    if best[0] > budget:
        raise ValueError(f"no plan peaks at or below {budget}")
    plan, j = [], nxt[0]
    while j <= n:
        plan.append(j - 1)
        j = nxt[j]
    kept = [False] * n
    for k in plan:
        kept[k] = True
    recomputed = 0
    for k in range(n):
        if not kept[k]:
            recomputed += f[k]
    return recomputed, plan
