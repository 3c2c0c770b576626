# cell: merge
# breaks: test_merge
# Correct values, but it copies both lists into torch tensors to merge them: O(m + n) extra
# memory that tracemalloc cannot see, so torch is refused in this exercise.
def merge(nums1: list[int], m: int, nums2: list[int], n: int) -> None:
    both = torch.cat([torch.tensor(nums1[:m], dtype=torch.int64), torch.tensor(nums2, dtype=torch.int64)])
    nums1[:] = both.sort(stable=True).values.tolist()
