"""`--format`: which module writes the findings (and file errors) of a run, and how."""

from __future__ import annotations

import json
from typing import TextIO

from unleak.engine.findings import FileResult
from unleak.output import github, json_findings
from unleak.output.report import finding_line, findings_of


def write_findings(results: list[FileResult], stream: TextIO, output_format: str, *, with_fixes: bool = False) -> None:
    """The findings of `results` as text, json (with each fix's edits if `with_fixes`), sarif or github."""
    findings = findings_of(results)
    if output_format == "json":
        json.dump(json_findings.listing(findings, with_fixes=with_fixes), stream, indent=2)
        stream.write("\n")
    elif output_format == "sarif":
        from unleak.output import sarif  # the rules' documentation: imports every rule

        json.dump(sarif.log(results), stream, indent=2)
        stream.write("\n")
    elif output_format == "github":
        stream.write(github.commands(results))
    else:
        stream.writelines(finding_line(finding) + "\n" for finding in findings)
