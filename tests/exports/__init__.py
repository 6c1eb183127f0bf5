"""Tests of the exports (Gradescope, otter-grader, nbgrader, PrairieLearn, GitHub Classroom) and the notebooks."""
