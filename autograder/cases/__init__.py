"""Per chapter: the cases each exercise draws and how the learner's function is run on them.

These modules run inside the learner's kernel (the sandbox mounts them); they import nothing
from autograder.reference, which the sandbox hides."""
