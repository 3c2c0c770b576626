# cell: merge
# breaks: test_merge
# Right values, no extra memory, and O(m + n) Python lines, but an insertion merge: it drops the
# placeholders with pop() and inserts each value of nums2 with list.insert, which shifts the tail of
# the list in C: O(m n) work that neither the memory rule nor a line count sees.
def merge(nums1: list[int], m: int, nums2: list[int], n: int) -> None:
    for _ in range(n):
        nums1.pop()
    i = 0
    for value in nums2:
        while i < len(nums1) and nums1[i] <= value:
            i += 1
        nums1.insert(i, value)
        i += 1
