# cell: min_recompute_plan
# breaks: test_min_recompute_plan
# The right table, but every span's bytes and FLOPs are added up with sum over a slice inside the
# loops: the right answer, with O(n) work per step hidden in one line, which the plain-Python rule
# refuses.
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
    never = float("inf")
    least = [[0] * (budget + 1) for _ in range(n + 2)]
    step = [[n + 1] * (budget + 1) for _ in range(n + 2)]
    for i in range(n, -1, -1):
        for h in range(budget + 1):
            best, arg, j = never, n + 1, i + 1
            while j <= n + 1 and h + sum(a[i + 1 : j + 1]) <= budget:
                c = sum(f[i + 1 : j]) + least[j][h + a[j]]
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
        plan.append(i - 1)
    return int(least[0][0]), plan
