# cell: merge_path_partition
# breaks: test_merge_path_partition
# Clamps an out-of-range diagonal instead of raising ValueError.
def merge_path_partition(a, b, diag: int) -> int:
    m, n = len(a), len(b)
    diag = min(max(diag, 0), m + n)
    lo, hi = max(0, diag - n), min(diag, m)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[mid - 1] <= b[diag - mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo
