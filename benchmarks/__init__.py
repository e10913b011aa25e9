"""daskexec benchmarks: the same graphs on daskexec and on the anchors, in one run.

``python -m benchmarks --backends threads,processes`` (see ``--help``).
"""
