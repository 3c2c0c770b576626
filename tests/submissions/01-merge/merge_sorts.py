# cell: merge
# breaks: test_merge
# Right answer by the forbidden road: sorting again.
def merge(nums1: list[int], m: int, nums2: list[int], n: int) -> None:
    nums1[:] = sorted(nums1[:m] + nums2)
