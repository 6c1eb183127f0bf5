"""Tests of the grading engine, the command and the sandbox."""
