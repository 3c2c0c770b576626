"""nbgrader's configuration for this course, for `make lab` (Validate, the formgrader) and for
instructors who run nbgrader's own commands. `python -m autograder grade` does its own execution
with the same limits (see autograder/grade.py)."""
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "mlsys-course"
c.Execute.timeout = 120  # seconds per cell, as `autograder grade --cell-timeout`
c.Execute.interrupt_on_timeout = True
c.OverwriteCells.add_missing_cells = True  # a deleted graded cell is restored, not left stuck
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.Validator.validate_all = True  # Validate names every failing cell, not just the first
# feedback never shows the hidden tests' source
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
