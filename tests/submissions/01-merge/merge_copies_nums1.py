# cell: merge
# breaks: test_merge
# Correct values, but it copies nums1's m values first: O(m) extra memory, not O(1).
def merge(nums1: list[int], m: int, nums2: list[int], n: int) -> None:
    head = nums1[:m]
    i = j = 0
    for k in range(m + n):
        if j >= n or (i < m and head[i] <= nums2[j]):
            nums1[k] = head[i]
            i += 1
        else:
            nums1[k] = nums2[j]
            j += 1
