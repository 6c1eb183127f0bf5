"""Exports of the course to the platforms instructors already use: Gradescope, otter-grader, nbgrader,
PrairieLearn and GitHub Classroom.

Each exporter builds from the same sources as ``course grade`` (course.yml, the
hidden tests, the reference solutions) and is tested by running the real tool
on a sample submission and comparing its score with ``course grade``'s.
"""
