# cell: min_peak_plan
# breaks: test_min_peak_plan
# The sqrt(n) rule: keep the end of every ceil(sqrt(n))-th layer. Good for equal layers, not the
# minimum when the sizes differ.
def min_peak_plan(act_bytes: list[int]) -> tuple[int, list[int]]:
    n = len(act_bytes)
    if n == 0:
        raise ValueError("act_bytes is empty")
    if min(act_bytes) < 0:
        raise ValueError("sizes must be non-negative")
    step = math.ceil(math.sqrt(n))
    plan = list(range(step - 1, n - 1, step))
    return plan_peak(act_bytes, plan), plan
