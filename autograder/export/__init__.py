"""Exports of the course to the platforms instructors already use: Gradescope, otter-grader and nbgrader.

Each exporter builds from the same sources as ``course grade`` (course.yml, the
hidden tests, the reference solutions) and is tested by running the real tool
on a sample submission and comparing its score with ``course grade``'s.
"""
