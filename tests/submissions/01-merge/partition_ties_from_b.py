# cell: merge_path_partition
# breaks: test_merge_path_partition
# A strict comparison takes ties from b first: a valid merge, but not the stable one.
def merge_path_partition(a, b, diag: int) -> int:
    m, n = len(a), len(b)
    if not 0 <= diag <= m + n:
        raise ValueError(f"diag must lie in [0, {m + n}]")
    lo, hi = max(0, diag - n), min(diag, m)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[mid - 1] < b[diag - mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo
