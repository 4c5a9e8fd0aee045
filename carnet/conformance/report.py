"""The run's reports: JUnit XML for CI tools and one self-contained HTML page for people.

JUnit: one ``testsuite`` per NIST test, one ``testcase`` per step (classname ``nist.<test>.<section>``);
a failed step has a ``failure``, a step not run or excluded is ``skipped`` with its reason. HTML:
the counts per collection, then every test, section and step with its verdict, reasons, endpoint,
request and response.
"""

from __future__ import annotations

import html
from pathlib import Path

from lxml import etree

from carnet.conformance.results import RunResult, StepResult, TestResult, Verdict

MAX_SHOWN = 200_000  # characters of a request or response kept in a report


def _clip(text: str) -> str:
    return (
        text
        if len(text) <= MAX_SHOWN
        else text[:MAX_SHOWN] + f"\n[... {len(text) - MAX_SHOWN} more characters]"
    )


def write_junit(run: RunResult, path: Path) -> None:
    suites = etree.Element(
        "testsuites",
        name="carnet conformance",
        tests=str(len(run.steps())),
        failures=str(run.count(Verdict.FAILED)),
        skipped=str(run.count(Verdict.NOT_RUN) + run.count(Verdict.EXCLUDED)),
        time=f"{run.seconds:.3f}",
    )
    for test in run.tests:
        suite = etree.SubElement(
            suites,
            "testsuite",
            name=f"nist.{test.test_id}",
            tests=str(len(test.steps)),
            failures=str(test.count(Verdict.FAILED)),
            errors="0",
            skipped=str(test.count(Verdict.NOT_RUN) + test.count(Verdict.EXCLUDED)),
            time=f"{sum(s.seconds for s in test.steps):.3f}",
        )
        props = etree.SubElement(suite, "properties")
        etree.SubElement(props, "property", name="collections", value=" ".join(sorted(test.collections)))
        for step in test.steps:
            case = etree.SubElement(
                suite,
                "testcase",
                classname=f"nist.{test.test_id}.{step.section or 'plan'}",
                name=step.step_id,
                time=f"{step.seconds:.3f}",
            )
            message = "; ".join(step.reasons)
            if step.verdict == Verdict.FAILED:
                etree.SubElement(case, "failure", message=message[:2000], type="conformance").text = message
            elif step.verdict in (Verdict.NOT_RUN, Verdict.EXCLUDED):
                etree.SubElement(case, "skipped", message=f"{step.verdict}: {message}"[:2000])
            out = "\n".join(
                [
                    f"endpoint: {step.endpoint}",
                    *step.notes,
                    "--- request ---",
                    _clip(step.request),
                    "--- response ---",
                    _clip(step.response),
                ]
            )
            etree.SubElement(case, "system-out").text = out
    path.write_bytes(etree.tostring(suites, pretty_print=True, xml_declaration=True, encoding="UTF-8"))


_STYLE = """
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
.passed{color:#176b2c}.failed{color:#b00020;font-weight:bold}
.not-run,.excluded{color:#8a6d00}
pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap;word-break:break-all;max-height:30em;overflow:auto}
details{margin:.2em 0}summary{cursor:pointer}
"""


def _verdict(verdict: Verdict) -> str:
    return f'<span class="{verdict.value.replace(" ", "-")}">{html.escape(verdict.value)}</span>'


def _step_row(step: StepResult) -> str:
    reasons = "".join(f"<div>{html.escape(r)}</div>" for r in step.reasons)
    notes = "".join(f"<div><small>{html.escape(n)}</small></div>" for n in step.notes)
    exchange = ""
    if step.request or step.response:
        exchange = (
            f"<details><summary>request / response</summary><div>endpoint: {html.escape(step.endpoint)}</div>"
            f"<pre>{html.escape(_clip(step.request))}</pre><pre>{html.escape(_clip(step.response))}</pre></details>"
        )
    return (
        f"<tr><td>{html.escape(step.section or '-')}</td><td>{html.escape(step.step_id)}</td>"
        f"<td>{html.escape(step.transaction)}</td><td>{_verdict(step.verdict)}</td>"
        f"<td>{reasons}{notes}{exchange}</td></tr>"
    )


def _test_block(test: TestResult) -> str:
    head = (
        f"{html.escape(test.test_id)} — {_verdict(test.verdict)} "
        f"<small>({', '.join(sorted(test.collections)) or 'no collection'}"
        f"{'; run as a dependency' if test.dependency else ''})</small>"
    )
    problem = f"<p>{html.escape(test.problem)}</p>" if test.problem else ""
    readme = f"<p><small>{html.escape(test.readme[:600])}</small></p>" if test.readme else ""
    rows = "".join(_step_row(s) for s in test.steps)
    opened = " open" if test.verdict == Verdict.FAILED else ""
    return (
        f'<details{opened} id="t{html.escape(test.test_id)}"><summary>{head}</summary>{readme}{problem}'
        f"<table><tr><th>section</th><th>step</th><th>transaction</th><th>verdict</th><th>reasons</th></tr>"
        f"{rows}</table></details>"
    )


def write_html(run: RunResult, path: Path) -> None:
    settings = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(val)}</td></tr>" for k, val in run.settings.items()
    )
    per = run.per_collection()
    coll_rows = "".join(
        f"<tr><td>{html.escape(c)}</td>"
        + "".join(f"<td>{counts[verdict]}</td>" for verdict in Verdict)
        + "</tr>"
        for c, counts in per.items()
    )
    heads = "".join(f"<th>{html.escape(verdict.value)}</th>" for verdict in Verdict)
    body = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Carnet conformance report</title>"
        f"<style>{_STYLE}</style></head><body><h1>NIST XDS testkit replay</h1>"
        f"<p><b>{html.escape(run.summary_line())}</b> in {run.seconds:.1f} s (steps)</p>"
        f"<table>{settings}</table><h2>Steps per collection</h2>"
        f"<table><tr><th>collection</th>{heads}</tr>{coll_rows}</table><h2>Tests</h2>"
        + "".join(_test_block(t) for t in run.tests)
        + "</body></html>"
    )
    path.write_text(body, encoding="utf-8")


def write(run: RunResult, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    junit, page = directory / "junit.xml", directory / "index.html"
    write_junit(run, junit)
    write_html(run, page)
    return junit, page
