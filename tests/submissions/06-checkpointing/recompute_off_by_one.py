# cell: min_recompute_plan
# breaks: test_min_recompute_plan
# The right table, but the plan is rebuilt with the shifted (1-based) indices of the table instead
# of the layers' own: every kept layer is reported one too far, and the last can be n itself.
def min_recompute_plan(act_bytes: list[int], flops: list[int], budget: int) -> tuple[int, list[int]]:
    n = len(act_bytes)
    if n == 0 or len(flops) != n:
        raise ValueError("act_bytes must be non-empty, and flops as long as it")
    a = [0, *(int(v) for v in act_bytes), 0]
    f = [0, *(int(v) for v in flops), 0]
    if min(a) < 0 or min(f) < 0:
        raise ValueError("sizes and FLOPs must be non-negative")
    if budget < 0:
        raise ValueError(f"no plan peaks at or below {budget}")
    pa, pf = [0] * (n + 2), [0] * (n + 2)
    for k in range(1, n + 2):
        pa[k], pf[k] = pa[k - 1] + a[k], pf[k - 1] + f[k]
    never = float("inf")
    least = [[0] * (budget + 1) for _ in range(n + 2)]
    step = [[n + 1] * (budget + 1) for _ in range(n + 2)]
    for i in range(n, -1, -1):
        for h in range(budget + 1):
            best, arg, j = never, n + 1, i + 1
            while j <= n + 1 and h + pa[j] - pa[i] <= budget:
                c = pf[j - 1] - pf[i] + least[j][h + a[j]]
                if c < best:
                    best, arg = c, j
                j += 1
            least[i][h], step[i][h] = best, arg
    if least[0][0] == never:
        raise ValueError(f"no plan peaks at or below {budget}")
    plan, i, h = [], 0, 0
    while step[i][h] <= n:
        i = step[i][h]
        h += a[i]
        plan.append(i)
    return int(least[0][0]), plan
