# cell: first_fit_decreasing
# breaks: test_first_fit_decreasing
# Best-fit decreasing: each item goes to the fullest bin that still fits, not the first one.
def first_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    if capacity <= 0 or any(not 0 <= n <= capacity for n in lengths):
        raise ValueError("bad capacity or length")
    bins, free = [], []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        fits = [b for b, room in enumerate(free) if room >= lengths[i]]
        if fits:
            b = min(fits, key=lambda b: free[b])
        else:
            b = len(bins)
            bins.append([])
            free.append(capacity)
        bins[b].append(i)
        free[b] -= lengths[i]
    return bins
