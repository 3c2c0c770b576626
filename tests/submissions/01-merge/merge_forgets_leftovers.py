# cell: merge
# breaks: test_merge
# The loop stops when either list runs out and never copies what is left of nums2: wrong when
# m == 0 or when nums2 holds the smallest values.
def merge(nums1: list[int], m: int, nums2: list[int], n: int) -> None:
    i, j, k = m - 1, n - 1, m + n - 1
    while i >= 0 and j >= 0:
        if nums1[i] > nums2[j]:
            nums1[k] = nums1[i]
            i -= 1
        else:
            nums1[k] = nums2[j]
            j -= 1
        k -= 1
