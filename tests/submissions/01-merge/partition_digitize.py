# cell: merge_path_partition
# breaks: test_merge_path_partition
# Right co-ranks, by rank counting instead of a search: a[i] lands at i + #(b < a[i]) in the stable
# merge (np.digitize counts that for every element), so the co-rank is how many of those ranks lie
# below diag. It reads all of a and b on every call: O(m + n), not O(log min(m, n)).
def merge_path_partition(a, b, diag: int) -> int:
    m, n = len(a), len(b)
    if not 0 <= diag <= m + n:
        raise ValueError(f"diag must lie in [0, {m + n}], got {diag}")
    if m == 0 or n == 0:
        return min(diag, m)
    a, b = np.asarray(a), np.asarray(b)
    ranks = np.arange(m) + np.digitize(a, b, right=True)
    return int(np.sum(ranks < diag))
