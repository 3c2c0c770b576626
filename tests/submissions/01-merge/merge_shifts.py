# cell: merge
# breaks: test_merge
# Right values and no extra memory, with no list method at all: an insertion merge that shifts
# the tail of nums1 one slot to the right by hand for every value of nums2, O(m n) work.
def merge(nums1: list[int], m: int, nums2: list[int], n: int) -> None:
    size = m
    for value in nums2:
        k = size
        while k > 0 and nums1[k - 1] > value:
            nums1[k] = nums1[k - 1]
            k -= 1
        nums1[k] = value
        size += 1
