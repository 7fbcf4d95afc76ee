#!/usr/bin/python
# Copyright (c) 2026, madengine developers
# MIT License (see LICENSE or https://opensource.org/licenses/MIT)
# SPDX-License-Identifier: MIT

from __future__ import annotations

DOCUMENTATION = r"""
module: parse_perf
short_description: Parse a model's run log into perf rows, or merge perf CSVs into one
version_added: 0.1.0
description:
  - "Works in one of three ways, chosen by the option given:"
  - >-
    O(log_path) parses one model's run log the way M(rocm.madengine.run_model) does; the first
    C(performance: <value> <metric>) line (or the model's O(multiple_results) CSV) gives the rows, an error
    pattern in the log makes them V(FAILURE) with C(failure_reason=ERROR_PATTERN), no metric makes them
    V(FAILURE) with C(NO_METRIC). With O(dest), the rows are appended to that perf CSV.
  - O(csv_paths) merges the rows of several perf CSVs (for example, fetched from the hosts of a fleet) into O(dest).
  - O(host_results) merges each host's perf CSV into O(dest) and adds a V(FAILURE) row for every model of
    O(manifest) a host did not report (C(HOST_UNREACHABLE), C(HOST_FAILED) or C(NO_RESULT)), so that every
    model and host ends as a row; O(summary) receives per-host totals. This is what the C(rocm.madengine.aggregate)
    role does.
  - A row identical to one already in O(dest) (or given twice) is not appended again, so merging the same results
    twice changes nothing. Existing rows of O(dest) are never rewritten, except once to add the columns of a
    legacy header.
author:
  - madengine developers (!UNKNOWN)
extends_documentation_fragment:
  - rocm.madengine.common.actiongroup
  - rocm.madengine.common.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: partial
    details:
      - The diff shows the row count of O(dest) before and after, and one line per added row (model, machine,
        status); not the whole file.
  idempotent:
    support: full
options:
  package_dir:
    description:
      - Relative paths of the other options are taken relative to this directory.
      - Without it, every path must be absolute.
    type: path
  additional_context:
    description:
      - The additional context of madengine; its log scan keys (C(log_error_pattern_scan),
        C(log_error_patterns), C(log_error_benign_patterns)) apply to O(log_path). Other keys are validated and
        ignored.
    type: dict
    default: {}
  log_path:
    description:
      - The run log of one model to parse (a C(*.run.live.log) written by M(rocm.madengine.run_model)).
    type: path
  model:
    description:
      - The model name for the rows parsed from O(log_path) (default the log's file name without
        C(.run.live.log)). Rows of a O(multiple_results) CSV are named C(<model>_<csv model>).
    type: str
  multiple_results:
    description:
      - The model's C(multiple_results) CSV (columns C(model), C(performance), C(metric), any others are kept);
        its rows replace the single row parsed from O(log_path).
    type: path
  machine_name:
    description:
      - The C(machine_name) of the parsed rows, and of merged rows that lack one.
    type: str
  run_id:
    description:
      - The C(run_id) of the parsed rows, and of the rows O(host_results) adds for missing models.
    type: str
    default: ""
  dest:
    description:
      - The perf CSV to append the rows to (created when missing).
      - Required with O(csv_paths) and O(host_results).
    type: path
  csv_paths:
    description:
      - perf CSVs whose rows are merged into O(dest). Each must exist.
    type: list
    elements: path
  host_results:
    description:
      - What each host of a fleet left. Needs O(manifest) and O(dest).
    type: list
    elements: dict
    suboptions:
      host:
        description: The inventory host name (the rows' C(machine_name) when they lack one).
        type: str
        required: true
      perf_csv:
        description: The host's perf CSV as fetched to where this module runs (empty when nothing came back).
        type: path
        default: ""
      status:
        description: V(ok) when the host finished its run, V(failed) when its run failed, V(unreachable).
        type: str
        choices: [ok, failed, unreachable]
        default: ok
      reason:
        description: Why the host failed (shown as C(message) in RV(hosts)).
        type: str
        default: ""
  manifest:
    description:
      - The build manifest the hosts ran; each of its models is expected from each host of O(host_results).
    type: path
  results_db:
    description:
      - Also record the rows in this results store (SQLite, created when missing), one run per C(run_id), target
        C(fleet). Rows already recorded are not recorded again. A store that cannot be written is a warning.
      - Needs O(dest).
    type: path
  summary:
    description:
      - With O(host_results), write the totals and RV(hosts) as JSON to this file (only when they change).
    type: path
requirements:
  - Python >= 3.9.
seealso:
  - module: rocm.madengine.run_model
notes:
  - Only one process should write O(dest) at a time; run the merge once (C(run_once), C(delegate_to)).
    Appends take an exclusive lock on the file.
"""

EXAMPLES = r"""
- name: Parse a run log that run_model left
  rocm.madengine.parse_perf:
    package_dir: /opt/MAD
    log_path: dummy_dummy.ubuntu.cpu.run.live.log
    model: dummy
  register: madengine_parsed

- name: Merge the perf CSVs fetched from two hosts into one
  rocm.madengine.parse_perf:
    csv_paths:
      - /srv/results/hosts/gpu1/perf.csv
      - /srv/results/hosts/gpu2/perf.csv
    dest: /srv/results/perf.csv
  run_once: true
  delegate_to: localhost

- name: Merge a fleet's results, with a row for every model a host did not report
  rocm.madengine.parse_perf:
    manifest: /srv/results/build_manifest.json
    host_results:
      - host: gpu1
        perf_csv: /srv/results/hosts/gpu1/perf.csv
      - host: gpu2
        status: unreachable
    dest: /srv/results/perf.csv
    summary: /srv/results/perf_summary.json
    run_id: 20260101T000000Z
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
results_db:
  description: The results store the rows were recorded in.
  returned: O(results_db) given and not in check mode
  type: str
  sample: /srv/results/madengine_results.sqlite
rows_recorded:
  description: How many rows were new to the results store.
  returned: O(results_db) given and not in check mode
  type: int
  sample: 4
rows:
  description: The rows parsed from O(log_path) (with O(log_path) only; merges return counts, not rows).
  returned: success and O(log_path) given
  type: list
  elements: dict
  sample:
    - model: dummy
      performance: "1234"
      metric: samples_per_second
      status: SUCCESS
      failure_reason: ""
status:
  description: V(SUCCESS) when every parsed row succeeded, else V(FAILURE).
  returned: success and O(log_path) given
  type: str
  sample: SUCCESS
performance:
  description: The performance value of the first parsed row (empty when there is none).
  returned: success and O(log_path) given
  type: str
  sample: "1234"
metric:
  description: The metric of the first parsed row.
  returned: success and O(log_path) given
  type: str
  sample: samples_per_second
failure_reason:
  description: V(ERROR_PATTERN) or V(NO_METRIC) when the log failed, else empty.
  returned: success and O(log_path) given
  type: str
  sample: ""
error_pattern:
  description: The error pattern found in the log (empty when none).
  returned: success and O(log_path) given
  type: str
  sample: "Traceback (most recent call last)"
perf_csv:
  description: The absolute path of O(dest).
  returned: success and O(dest) given
  type: str
  sample: /srv/results/perf.csv
rows_read:
  description: How many rows the inputs gave (parsed, read, or added for missing models).
  returned: success
  type: int
  sample: 4
rows_written:
  description: How many of them were appended to O(dest) (in check mode, would be); duplicates are not.
  returned: success
  type: int
  sample: 4
success:
  description: How many of the input rows are V(SUCCESS).
  returned: success
  type: int
  sample: 3
failure:
  description: How many of the input rows are V(FAILURE).
  returned: success
  type: int
  sample: 1
hosts:
  description: Per host of O(host_results), its status, message, row counts and the models it did not report.
  returned: success and O(host_results) given
  type: dict
  sample:
    gpu1: {status: ok, message: "", rows: 2, success: 2, failure: 0, missing_models: []}
    gpu2: {status: unreachable, message: "", rows: 2, success: 0, failure: 2, missing_models: [dummy, dummy2]}
summary:
  description: The absolute path of O(summary) (written unless check mode).
  returned: success and O(summary) given
  type: str
  sample: /srv/results/perf_summary.json
"""

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.rocm.madengine.plugins.module_utils import aggregate, perf, perfcsv, provenance  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils import ansible_glue as glue  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils.errors import MadengineError  # noqa: E402
from ansible_collections.rocm.madengine.plugins.module_utils.manifest import load_manifest  # noqa: E402

DURATION = re.compile(r"^test_duration: ([0-9.]+)s\s*$", re.MULTILINE)
LOG_SUFFIXES = (".run.live.log", ".live.log", ".log")
MAX_DIFF_LINES = 50


def resolve(module, option, value):
    if value is None:
        return None
    root = module.params["package_dir"]
    if root:
        return glue.under(os.path.abspath(root), value)
    if not os.path.isabs(value):
        module.fail_json(msg=f"{option}: {value} is relative; give an absolute path or package_dir", option=option)
    return os.path.normpath(value)


def read_text(module, option, path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError as exc:
        module.fail_json(msg=f"{option}: cannot read {path}: {exc.strerror}", option=option)
    return ""  # not reached


def log_rows(module, ctx):
    """The rows of one run log, with statuses as run_model gives them."""
    params = module.params
    path = resolve(module, "log_path", params["log_path"])
    text = read_text(module, "log_path", path)
    name = params["model"]
    if not name:
        name = os.path.basename(path)
        name = next((name[: -len(s)] for s in LOG_SUFFIXES if name.endswith(s)), name)
    row = dict.fromkeys(perfcsv.ALL_COLUMNS, "")
    row.update(model=name, machine_name=params["machine_name"] or "", run_id=params["run_id"])
    duration = DURATION.search(text)
    if duration:
        row["test_duration"] = duration.group(1)
    scan = glue.call_core(module, "additional_context", perf.ScanConfig.from_settings, {}, ctx)
    error = perf.find_error_pattern(text, scan) or ""
    rows = [row]
    if params["multiple_results"]:
        csv_path = resolve(module, "multiple_results", params["multiple_results"])
        try:
            found = perf.read_multiple_results(read_text(module, "multiple_results", csv_path), csv_path)
        except perf.ResultsCsvError as exc:
            module.warn(f"multiple_results: {exc}")
            found = []
        rows = []
        for csv_row in found:
            item = dict(row)
            item.update(csv_row)
            item["model"] = f"{name}_{csv_row['model']}" if params["model"] else csv_row["model"]
            rows.append(item)
        rows = rows or [row]
    else:
        row["performance"], row["metric"] = perf.parse_performance(text)
    for item in rows:
        if error:
            item.update(status=perfcsv.STATUS_FAILURE, failure_reason="ERROR_PATTERN")
        elif item.get("performance"):
            item.update(status=perfcsv.STATUS_SUCCESS, failure_reason="")
        else:
            item.update(status=perfcsv.STATUS_FAILURE, failure_reason="NO_METRIC")
    return rows, error


def csv_rows(module):
    rows = []
    for given in module.params["csv_paths"]:
        path = resolve(module, "csv_paths", given)
        if not os.path.isfile(path):
            module.fail_json(msg=f"csv_paths: {path} not found", option="csv_paths")
        for row in glue.call_core(module, "csv_paths", perfcsv.read_rows, path):
            if module.params["machine_name"] and not row.get("machine_name"):
                row["machine_name"] = module.params["machine_name"]
            rows.append(row)
    return rows


def host_rows(module):
    """Every host's rows plus a FAILURE row per missing model, as the core's aggregate merge makes them."""
    params = module.params
    path = resolve(module, "manifest", params["manifest"])
    try:
        data = load_manifest(path)
    except MadengineError as exc:
        module.fail_json(
            msg="manifest: " + glue.error_message(exc.one_line()).replace("manifest_file ", "", 1),
            option="manifest",
            error=type(exc).__name__,
        )
    hosts = [
        aggregate.HostResult(
            host=item["host"],
            perf_csv=resolve(module, "host_results", item["perf_csv"]) if item["perf_csv"] else "",
            status=item["status"],
            message=item["reason"],
        )
        for item in params["host_results"]
    ]
    with tempfile.TemporaryDirectory(prefix="madengine-merge-") as scratch:
        merged_csv = os.path.join(scratch, "perf.csv")
        totals = glue.call_core(
            module, "host_results", aggregate.merge_results, merged_csv, hosts, data, params["run_id"]
        )
        rows = perfcsv.read_rows(merged_csv)
    return rows, totals


def row_key(row):
    return tuple(sorted((str(k), str(v)) for k, v in row.items() if v not in (None, "")))


def new_rows(dest, rows):
    """The rows not already in dest (nor earlier in rows), in order."""
    seen = set(row_key(row) for row in perfcsv.read_rows(dest)) if dest and os.path.isfile(dest) else set()
    result = []
    for row in rows:
        key = row_key(row)
        if key not in seen:
            seen.add(key)
            result.append(row)
    return result


def count_rows(path):
    return len(perfcsv.read_rows(path)) if os.path.isfile(path) else 0


def write_summary(module, path, summary):
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    if os.path.isfile(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            if handle.read() == text:
                return False
    if not module.check_mode:
        directory = os.path.dirname(path) or "."
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".perf-summary-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return True


def main():
    module = AnsibleModule(
        argument_spec={
            "package_dir": {"type": "path"},
            "additional_context": {"type": "dict", "default": {}},
            "log_path": {"type": "path"},
            "model": {"type": "str"},
            "multiple_results": {"type": "path"},
            "machine_name": {"type": "str"},
            "run_id": {"type": "str", "default": ""},
            "dest": {"type": "path"},
            "csv_paths": {"type": "list", "elements": "path"},
            "host_results": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "host": {"type": "str", "required": True},
                    "perf_csv": {"type": "path", "default": ""},
                    "status": {"type": "str", "choices": ["ok", "failed", "unreachable"], "default": "ok"},
                    "reason": {"type": "str", "default": ""},
                },
            },
            "manifest": {"type": "path"},
            "results_db": {"type": "path"},
            "summary": {"type": "path"},
        },
        required_one_of=[("log_path", "csv_paths", "host_results")],
        mutually_exclusive=[("log_path", "csv_paths", "host_results")],
        required_by={
            "csv_paths": "dest",
            "host_results": ("dest", "manifest"),
            "summary": "host_results",
            "results_db": "dest",
            "model": "log_path",
            "multiple_results": "log_path",
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["package_dir"] and not os.path.isdir(params["package_dir"]):
        module.fail_json(msg=f"package_dir: {params['package_dir']} is not a directory", option="package_dir")
    ctx = glue.context_of(module)
    result = {"changed": False}
    totals = None
    if params["log_path"]:
        rows, error = log_rows(module, ctx)
        first = rows[0]
        failed = [r for r in rows if r["status"] == perfcsv.STATUS_FAILURE]
        result.update(
            rows=rows,
            status=perfcsv.STATUS_FAILURE if failed else perfcsv.STATUS_SUCCESS,
            performance=first.get("performance", ""),
            metric=first.get("metric", ""),
            failure_reason=failed[0]["failure_reason"] if failed else "",
            error_pattern=error,
        )
    elif params["csv_paths"] is not None:
        rows = csv_rows(module)
    else:
        rows, totals = host_rows(module)
        result["hosts"] = totals["hosts"]
    result.update(
        rows_read=len(rows),
        rows_written=0,
        success=sum(1 for r in rows if r.get("status") == perfcsv.STATUS_SUCCESS),
        failure=sum(1 for r in rows if r.get("status") == perfcsv.STATUS_FAILURE),
    )
    if params["dest"]:
        dest = resolve(module, "dest", params["dest"])
        result["perf_csv"] = dest
        if totals is not None:
            totals["dest"] = dest
        added = new_rows(dest, rows)
        result["rows_written"] = len(added)
        if added:
            result["changed"] = True
            if module._diff:
                before = count_rows(dest)
                lines = [
                    f"{r.get('model', '')} on {r.get('machine_name') or '-'}: {r.get('status', '')}"
                    for r in added[:MAX_DIFF_LINES]
                ]
                if len(added) > MAX_DIFF_LINES:
                    lines.append(f"... {len(added) - MAX_DIFF_LINES} more")
                result["diff"] = {
                    "before_header": dest,
                    "after_header": dest,
                    "before": f"{before} rows\n",
                    "after": "{} rows\n{}\n".format(before + len(added), "\n".join(lines)),
                }
            if not module.check_mode:
                glue.call_core(module, "dest", perfcsv.append_rows, dest, added)
        if params["results_db"] and not module.check_mode:
            db = resolve(module, "results_db", params["results_db"])
            result["results_db"] = db
            result["rows_recorded"] = provenance.record_rows(
                db, rows, glue.ModuleReporter(module), target="fleet", package_dir=os.path.dirname(dest), context=ctx
            )
    if params["summary"]:
        path = resolve(module, "summary", params["summary"])
        result["summary"] = path
        if write_summary(module, path, totals):
            result["changed"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
