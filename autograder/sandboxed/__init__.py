"""Everything that runs inside the sandbox, beside the student's code.

The grader copies this folder into the sandbox as one package (``sandboxed``), so its
modules import only the standard library, torch and each other (relatively), never the
rest of the engine. Nothing these modules say is trusted: the grader re-checks every
value that comes back (type, dtype, shape, finiteness) and does all comparisons itself.

* ``protocol``: the wire format, length-prefixed frames (one implementation, both sides).
* ``instruments``: per-call recorders (ops, shapes, saved-tensor bytes, GPU compile), a registry.
* ``worker``: holds the student's modules and objects, runs one request.
* ``child``: one submission's process: drops privileges, writes the files, sets limits, serves.
* ``cleanup``: kills what a child left running and removes what it left behind.
* ``zygote``: imports torch once, forks a child per submission (the entry point).
* ``triton_aot``: compiles a student's Triton kernels for a GPU the machine does not have.
"""
