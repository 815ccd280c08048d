"""A LibCST codemod that visits every node of every file and changes nothing.

bench/run.py times LibCST's own codemod runner with it, which measures what any LibCST-based
tool pays before doing real work: reading, parsing and walking each file across a process pool.
"""

from __future__ import annotations

from libcst.codemod import VisitorBasedCodemodCommand


class NoopCodemod(VisitorBasedCodemodCommand):
    DESCRIPTION = "Visits every node of every file and changes nothing."
