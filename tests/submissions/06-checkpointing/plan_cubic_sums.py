# cell: min_peak_plan
# breaks: test_min_peak_plan
# The right recurrence, but every span is summed with sum(a[i + 1 : j + 1]) inside the double
# loop: O(n^3) work, done in C one span per line, so a line count alone sees only O(n^2). A
# span is one subtraction of prefix sums.
def min_peak_plan(act_bytes: list[int]) -> tuple[int, list[int]]:
    n = len(act_bytes)
    if n == 0:
        raise ValueError("act_bytes is empty")
    a = [0, *(int(v) for v in act_bytes), 0]
    if min(a) < 0:
        raise ValueError("sizes must be non-negative")
    best, nxt = [0] * (n + 2), [n + 1] * (n + 2)
    for i in range(n, -1, -1):
        top = None
        for j in range(i + 1, n + 2):
            cost = max(sum(a[i + 1 : j + 1]), a[j] + best[j])
            if top is None or cost < top:
                top, nxt[i] = cost, j
        best[i] = top
    plan, j = [], nxt[0]
    while j <= n:
        plan.append(j - 1)
        j = nxt[j]
    return best[0], plan
