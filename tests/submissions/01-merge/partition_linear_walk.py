# cell: merge_path_partition
# breaks: test_merge_path_partition
# Right co-ranks, found by walking along the diagonal from its lower end one point at a time until
# the next value of a belongs after b's: O(diag) reads per call instead of a binary search.
def merge_path_partition(a, b, diag: int) -> int:
    m, n = len(a), len(b)
    if not 0 <= diag <= m + n:
        raise ValueError(f"diag must lie in [0, {m + n}], got {diag}")
    i, hi = max(0, diag - n), min(diag, m)
    while i < hi and a[i] <= b[diag - i - 1]:
        i += 1
    return i
