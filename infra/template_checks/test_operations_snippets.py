"""The shell snippets of docs/operations.md run, and call the AWS CLI as it really is.

Run: .venv/bin/python -B -m unittest discover -s infra/template_checks -v   (or `make lint-template`)

Every fenced ```sh / ```bash block is run with `bash -euo pipefail` (plus `inherit_errexit`) in a
temporary directory, after the doc's first block (the preamble defining `STACK` and `out`), as the
doc tells operators to. PATH holds only stubs (`aws`, `sam`, `make`, `curl`, `rustup`) that record
their arguments, one JSON line per call, and the two real tools the snippets use (`python3`,
`date`); any other command is recorded as missing. Stdin carries a fake secret for `read -rs`.
The stub `aws` answers `describe-stacks ... OutputKey=='X'` with a plausible value when the
template has output X, and `None` (what the CLI prints) when it has not.

Each property is a `check_*` function returning the problems it finds (empty: holds), so that
`EachSnippetCheckCanFail` can prove every check fails on a doc that breaks it, as in test_template.py.
The AWS CLI operations are an explicit allow-list (with their required parameters) that one test
compares with the operation models botocore ships (the same models the AWS CLI is generated from).
"""

import atexit
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest
from dataclasses import dataclass
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = Path(os.environ.get("OPERATIONS_DOC_PATH", ROOT / "docs" / "operations.md"))
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
BASH = shutil.which("bash") or "/bin/bash"
STDIN = "whsec_c3R1Yi1zZWNyZXQ=\n" * 4

STUBS = ("aws", "sam", "make", "curl", "rustup", "cargo", "clerk-sync-ops")
REAL_TOOLS = ("python3", "date")

# The AWS CLI v2 operations the doc may call, each with the parameters the CLI requires (its
# operation model's required members). A typo such as `get-queue-attribute` is not in the list.
AWS_OPERATIONS = {
    ("cloudformation", "describe-stacks"): set(),
    ("cloudformation", "describe-stack-resource"): {"--stack-name", "--logical-resource-id"},
    ("deploy", "list-deployments"): set(),
    ("deploy", "get-deployment"): {"--deployment-id"},
    ("deploy", "stop-deployment"): {"--deployment-id"},
    ("lambda", "get-alias"): {"--function-name", "--name"},
    ("lambda", "list-versions-by-function"): {"--function-name"},
    ("lambda", "update-alias"): {"--function-name", "--name"},
    ("secretsmanager", "put-secret-value"): {"--secret-id"},
    ("sqs", "get-queue-attributes"): {"--queue-url"},
    ("sqs", "receive-message"): {"--queue-url"},
    ("sqs", "delete-message"): {"--queue-url", "--receipt-handle"},
    ("sqs", "purge-queue"): {"--queue-url"},
    ("sqs", "start-message-move-task"): {"--source-arn"},
    ("sqs", "list-message-move-tasks"): {"--source-arn"},
    ("dynamodb", "get-item"): {"--table-name", "--key"},
    ("dynamodb", "query"): {"--table-name"},
    ("dynamodb", "scan"): {"--table-name"},
    ("xray", "get-trace-summaries"): {"--start-time", "--end-time"},
    ("xray", "batch-get-traces"): {"--trace-ids"},
}
# Required by the service although the model cannot say so (one of two alternatives): a Query
# without a key condition is refused. The doc uses the expression form.
EXTRA_REQUIRED = {("dynamodb", "query"): {"--key-condition-expression", "--expression-attribute-values"}}
# Commands the AWS CLI v2 adds on top of the models: their options, and what they require.
CLI_V2_COMMANDS = {
    ("logs", "tail"): {"--since", "--follow", "--format", "--filter-pattern", "--log-stream-names",
                       "--log-stream-name-prefix"},
}
CLI_SERVICE_NAMES = {"deploy": "codedeploy"}  # CLI command -> botocore service
GLOBAL_OPTIONS = {
    "--debug", "--endpoint-url", "--no-verify-ssl", "--no-paginate", "--output", "--query", "--profile",
    "--region", "--color", "--no-sign-request", "--ca-bundle", "--cli-read-timeout",
    "--cli-connect-timeout", "--cli-binary-format", "--no-cli-pager", "--cli-auto-prompt",
    "--no-cli-auto-prompt", "--cli-input-json", "--cli-input-yaml", "--generate-cli-skeleton",
    "--starting-token", "--page-size", "--max-items",
}
OUTPUT_FORMATS = {"json", "text", "table", "yaml", "yaml-stream"}

# clerk-sync-ops (infra/ops): its subcommands and the flags each takes (the global ones included).
# The binary's own test (infra/ops/tests/ops/binary.rs) checks the doc's calls against its --help.
OPS_GLOBAL_FLAGS = {"--env", "--stack", "--samconfig", "--outputs", "--rate", "--no-progress", "--help"}
OPS_SUBCOMMANDS = {
    "backfill": {"--resume", "--dry-run", "--checkpoint", "--concurrency", "--page-size"},
    "reconcile": {"--fix", "--dry-run", "--sample", "--show"},
    "redrive": {"--peek", "--dry-run", "--max", "--method", "--visibility-timeout"},
    "inspect": {"--user", "--show-pii", "--limit"},
    "resync": {"--dry-run"},
}

# What each AWS CLI call of the DLQ section needs from IAM (AWS's service authorization reference;
# StartMessageMoveTask: the SQS API permissions reference). The queues and the event log are
# encrypted with the stack's key: reading a message or an item decrypts, a redrive re-encrypts.
DLQ_SECTION = "DLQ triage"
IAM_FOR_OPERATION = {
    ("cloudformation", "describe-stacks"): {"cloudformation:DescribeStacks"},
    ("sqs", "get-queue-attributes"): {"sqs:GetQueueAttributes"},
    ("sqs", "receive-message"): {"sqs:ReceiveMessage", "kms:Decrypt"},
    ("sqs", "delete-message"): {"sqs:DeleteMessage"},
    ("sqs", "purge-queue"): {"sqs:PurgeQueue"},
    ("sqs", "start-message-move-task"): {
        "sqs:StartMessageMoveTask", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
        "sqs:SendMessage", "kms:Decrypt", "kms:GenerateDataKey"},
    ("sqs", "list-message-move-tasks"): {"sqs:ListMessageMoveTasks"},
    ("dynamodb", "get-item"): {"dynamodb:GetItem", "kms:Decrypt"},
    ("dynamodb", "query"): {"dynamodb:Query", "kms:Decrypt"},
    ("dynamodb", "scan"): {"dynamodb:Scan", "kms:Decrypt"},
}

STUB_SOURCE = r'''
import json, os, re, sys
name, argv = os.path.basename(sys.argv[0]), sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({"cmd": name, "argv": argv}) + "\n")
if name == "__missing":
    sys.stderr.write(f"{argv[0] if argv else '?'}: command not found\n")
    sys.exit(127)
def opt(flag):
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None
if name == "aws" and argv[:2] == ["cloudformation", "describe-stacks"]:
    key = re.search(r"OutputKey=='(\w+)'", opt("--query") or "")
    if key:
        print(json.loads(os.environ["STUB_OUTPUTS"]).get(key.group(1), "None"))
    else:
        print("[]")
elif name == "aws" and argv[:2] == ["cloudformation", "describe-stack-resource"]:
    print("stub-" + (opt("--logical-resource-id") or "resource"))
elif name == "aws":
    print("stub" if opt("--output") in ("text", "table") else "{}")
elif name == "curl":
    print('{"status":"ok"}')
'''


@dataclass(frozen=True)
class Block:
    section: str
    line: int
    code: str


@dataclass(frozen=True)
class Result:
    block: Block
    rc: int
    stderr: str
    calls: tuple


def blocks(text):
    """Every ```sh / ```bash block, dedented (blocks inside list items are indented), with its
    section (the nearest `## ` heading above it) and the line its code starts on."""
    found, section = [], ""
    fence = re.compile(r"^( *)```(sh|bash)[ \t]*\n(.*?)^\1```[ \t]*$", re.M | re.S)
    headings = [(m.start(), m.group(1)) for m in re.finditer(r"^## (.+)$", text, re.M)]
    for m in fence.finditer(text):
        section = ([h for pos, h in headings if pos < m.start()] or [""])[-1]
        line = text.count("\n", 0, m.start(3)) + 1
        found.append(Block(section, line, textwrap.dedent(m.group(3))))
    return found


def template_outputs():
    template = json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))
    values = {}
    for key in template["Outputs"]:
        if key.endswith("QueueUrl"):
            values[key] = f"https://sqs.us-east-1.amazonaws.com/123456789012/clerk-sync-prod-{key}"
        elif key.endswith("Url"):
            values[key] = f"https://abc123.execute-api.us-east-1.amazonaws.com/{key}"
        elif key.endswith("Arn"):
            values[key] = f"arn:aws:stub:us-east-1:123456789012:clerk-sync-prod-{key}"
        else:
            values[key] = f"clerk-sync-prod-{key}"
    return values


@functools.lru_cache(maxsize=None)
def _stub_dir():
    path = Path(tempfile.mkdtemp(prefix="ops-snippet-stubs-"))
    atexit.register(shutil.rmtree, path, True)
    for name in STUBS + ("__missing",):
        stub = path / name
        stub.write_text(f"#!{sys.executable} -I\n{STUB_SOURCE}")
        stub.chmod(0o755)
    for tool in REAL_TOOLS:
        # python3: the interpreter itself (a pyenv shim is a bash script needing more on PATH).
        real = os.path.realpath(sys.executable) if tool == "python3" else shutil.which(tool)
        (path / tool).symlink_to(real)
    return path


@functools.lru_cache(maxsize=None)
def run_block(preamble, block):
    """Run one block after the preamble; its exit status, stderr and the stubs' calls."""
    stubs = _stub_dir()
    with tempfile.TemporaryDirectory(prefix="ops-snippet-") as work:
        work = Path(work)
        shutil.copy(SAMCONFIG, work / "samconfig.toml")
        log = work / "calls.jsonl"
        log.touch()
        script = work / "snippet.sh"
        script.write_text(
            "shopt -s inherit_errexit\n"
            f'command_not_found_handle() {{ "{stubs}/__missing" "$@"; return 127; }}\n'
            f"{preamble}\n{block.code}\n")
        env = {"PATH": str(stubs), "HOME": str(work), "LANG": "C", "STUB_LOG": str(log),
               "STUB_OUTPUTS": json.dumps(template_outputs())}
        proc = subprocess.run([BASH, "--noprofile", "--norc", "-euo", "pipefail", str(script)],
                              cwd=work, env=env, input=STDIN, capture_output=True, text=True, timeout=60)
        calls = tuple(json.loads(line) for line in log.read_text().splitlines())
    return Result(block, proc.returncode, proc.stderr, calls)


def run_doc(text):
    found = blocks(text)
    if not found:
        return []
    preamble = found[0].code
    return [run_block("" if i == 0 else preamble, b) for i, b in enumerate(found)]


def where(block):
    return f"docs/operations.md:{block.line} ({block.section or 'preamble'})"


def aws_calls(results):
    for r in results:
        for call in r.calls:
            if call["cmd"] == "aws":
                yield r.block, call["argv"]


def flags(argv):
    return [a for a in argv[2:] if a.startswith("--")]


def value(argv, flag):
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None


# ---- checks --------------------------------------------------------------------------------------

def check_blocks_run(text, results):
    problems = []
    for r in results:
        if r.rc != 0:
            problems.append(f"{where(r.block)}: exit {r.rc}: {r.stderr.strip()[-300:]}")
        missing = [c["argv"][:1] for c in r.calls if c["cmd"] == "__missing"]
        if missing:
            problems.append(f"{where(r.block)}: commands not found: {missing}")
    return problems


def check_no_comments_in_commands(text, results):
    """A comment line inside a backslash-continued command ends the command there (the rest runs as
    a command of its own); a space after the backslash does the same; a `#` argument is a comment
    that reached a program."""
    problems = []
    for b in blocks(text):
        lines = b.code.splitlines()
        for i, line in enumerate(lines):
            if re.search(r"\\[ \t]+$", line):
                problems.append(f"docs/operations.md:{b.line + i}: whitespace after a line-continuing backslash")
            if line.endswith("\\") and i + 1 < len(lines) and lines[i + 1].lstrip().startswith("#"):
                problems.append(f"docs/operations.md:{b.line + i + 1}: comment inside a continued command")
    for r in results:
        for call in r.calls:
            argv = call["argv"]
            # `#name` is also how DynamoDB expressions name attributes: fine as an expression's value.
            if any(a.startswith("#") and not (i and re.fullmatch(r"--[a-z-]*expression", argv[i - 1]))
                   for i, a in enumerate(argv)):
                problems.append(f"{where(r.block)}: {call['cmd']} got a comment as an argument: {call['argv']}")
    return problems


def check_aws_operations(text, results):
    problems = []
    for block, argv in aws_calls(results):
        pair = tuple(argv[:2])
        if pair in CLI_V2_COMMANDS:
            unknown = set(flags(argv)) - CLI_V2_COMMANDS[pair] - GLOBAL_OPTIONS
            if len(argv) < 3 or argv[2].startswith("--"):
                problems.append(f"{where(block)}: aws {' '.join(pair)} without its log group")
            if unknown:
                problems.append(f"{where(block)}: aws {' '.join(pair)}: unknown options {sorted(unknown)}")
            continue
        if pair not in AWS_OPERATIONS:
            problems.append(f"{where(block)}: aws {' '.join(pair)} is not an AWS CLI operation of the allow-list")
            continue
        required = AWS_OPERATIONS[pair] | EXTRA_REQUIRED.get(pair, set())
        missing = required - set(flags(argv))
        if missing:
            problems.append(f"{where(block)}: aws {' '.join(pair)} without {sorted(missing)}")
        for flag in required & set(flags(argv)):
            if value(argv, flag) in (None, "") or value(argv, flag).startswith("--"):
                problems.append(f"{where(block)}: aws {' '.join(pair)} {flag} has no value")
        if "--output" in argv and value(argv, "--output") not in OUTPUT_FORMATS:
            problems.append(f"{where(block)}: aws {' '.join(pair)} --output {value(argv, '--output')}")
    return problems


def check_aws_options(text, results):
    """Every option is one the operation's model (or the CLI itself) knows: no misspelt flags."""
    problems = []
    for block, argv in aws_calls(results):
        pair = tuple(argv[:2])
        if pair in AWS_OPERATIONS:
            unknown = set(flags(argv)) - cli_options(*pair) - GLOBAL_OPTIONS
            if unknown:
                problems.append(f"{where(block)}: aws {' '.join(pair)}: unknown options {sorted(unknown)}")
    return problems


def check_xray_time_range(text, results):
    problems, seen = [], False
    for block, argv in aws_calls(results):
        if argv[:2] == ["xray", "get-trace-summaries"]:
            seen = True
            start, end = value(argv, "--start-time"), value(argv, "--end-time")
            if not start or not end:
                problems.append(f"{where(block)}: get-trace-summaries without --start-time and --end-time")
            elif start.isdigit() and end.isdigit() and int(start) >= int(end):
                problems.append(f"{where(block)}: get-trace-summaries with an empty time range {start}..{end}")
    if not seen and "get-trace-summaries" in text:
        problems.append("get-trace-summaries is mentioned but no snippet runs it")
    return problems


def _arm64(argv):
    return any(re.search(r'\bArchitecture="?arm64"?', a) for a in argv)


def check_arm64_reaches_build_and_deploy(text, results):
    """Where a snippet switches to arm64, its `sam build` and its `sam deploy` both get the switch:
    a build for x86_64 deployed as arm64 cannot start."""
    problems, shown = [], False
    for r in results:
        sam = [c["argv"] for c in r.calls if c["cmd"] == "sam"]
        if not any(_arm64(argv) for argv in sam) and "arm64" not in r.block.code:
            continue
        shown = True
        for command in ("build", "deploy"):
            calls = [argv for argv in sam if argv[:1] == [command]]
            if not calls:
                problems.append(f"{where(r.block)}: arm64 switch without a sam {command}")
            for argv in calls:
                if not _arm64(argv):
                    problems.append(f"{where(r.block)}: sam {command} without the arm64 switch: {argv}")
    if not shown and re.search(r"Architecture=\\?\"?arm64", text):
        problems.append("the arm64 switch is described but no snippet shows it")
    return problems


def check_stack_outputs_exist(text, results):
    outputs, problems = template_outputs(), []
    for block, argv in aws_calls(results):
        if argv[:2] == ["cloudformation", "describe-stacks"]:
            for key in re.findall(r"OutputKey=='(\w+)'", value(argv, "--query") or ""):
                if key not in outputs:
                    problems.append(f"{where(block)}: stack output {key} is not in template.yaml")
    return problems


def _section(text, title):
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return m.group(1) if m else ""


def dlq_permission_table(text):
    """The DLQ section's table: operation -> the IAM actions it lists."""
    table = {}
    for row in re.findall(r"^\|(.+)\|\s*$", _section(text, DLQ_SECTION), re.M):
        cells = [c.strip() for c in row.split("|")]
        op = re.match(r"`([a-z-]+)`", cells[0])
        if op and len(cells) >= 2:
            table[op.group(1)] = set(re.findall(r"\b(?:sqs|kms|dynamodb|cloudformation):[A-Za-z]+", cells[1]))
    return table


def check_dlq_permissions(text, results):
    """The DLQ section lists, for each AWS call its commands make (and the inline `purge-queue`),
    exactly the IAM actions it needs."""
    table, problems = dlq_permission_table(text), []
    section = _section(text, DLQ_SECTION)
    called = {tuple(argv[:2]) for block, argv in aws_calls(results) if block.section == DLQ_SECTION}
    called |= {("sqs", op) for op in re.findall(r"`aws sqs ([a-z-]+)", section)}
    if not called:
        problems.append("the DLQ section runs no AWS command")
    for pair in sorted(called):
        need = IAM_FOR_OPERATION.get(pair)
        if need is None:
            problems.append(f"DLQ section calls aws {' '.join(pair)}, whose IAM needs this test does not know")
        elif pair[1] not in table:
            problems.append(f"DLQ section: no permissions row for {pair[1]} (needs {sorted(need)})")
        elif table[pair[1]] != need:
            problems.append(f"DLQ section: {pair[1]} lists {sorted(table[pair[1]])}, needs {sorted(need)}")
    for op in set(table) - {p[1] for p in called}:
        problems.append(f"DLQ section: permissions row for {op}, which the section does not run")
    return problems


def check_ops_calls(text, results):
    """Every clerk-sync-ops call names a subcommand it has, with flags that subcommand takes, and
    every call on a deployed stack says which (`--env`)."""
    problems = []
    for result in results:
        for call in result.calls:
            if call["cmd"] != "clerk-sync-ops":
                continue
            argv = call["argv"]
            where_ = where(result.block)
            if not argv or argv[0] not in OPS_SUBCOMMANDS:
                problems.append(f"{where_}: clerk-sync-ops {' '.join(argv[:1])}: no such subcommand")
                continue
            allowed = OPS_SUBCOMMANDS[argv[0]] | OPS_GLOBAL_FLAGS
            for flag in (a.split("=")[0] for a in argv[1:] if a.startswith("--")):
                if flag not in allowed:
                    problems.append(f"{where_}: clerk-sync-ops {argv[0]} has no {flag}")
            if "--env" not in argv:
                problems.append(f"{where_}: clerk-sync-ops {argv[0]} without --env runs on the local stack")
    if not any(c["cmd"] == "clerk-sync-ops" for r in results for c in r.calls):
        problems.append("the doc runs no clerk-sync-ops command")
    return problems


CHECKS = (check_blocks_run, check_no_comments_in_commands, check_aws_operations, check_aws_options,
          check_xray_time_range, check_arm64_reaches_build_and_deploy, check_stack_outputs_exist,
          check_dlq_permissions, check_ops_calls)


# ---- the AWS CLI's models ------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _operation_model(service, op):
    import botocore.session
    from botocore import xform_name
    model = botocore.session.get_session().get_service_model(CLI_SERVICE_NAMES.get(service, service))
    for name in model.operation_names:
        if xform_name(name, "-") == op:
            return model.operation_model(name)
    return None


def cli_options(service, op):
    """The options the AWS CLI generates for an operation: one per input member, `--no-` for booleans."""
    from botocore import xform_name
    operation = _operation_model(service, op)
    options = set()
    if operation is not None and operation.input_shape is not None:
        for member, shape in operation.input_shape.members.items():
            options.add("--" + xform_name(member, "-"))
            if shape.type_name == "boolean":
                options.add("--no-" + xform_name(member, "-"))
    return options


def cli_required(service, op):
    from botocore import xform_name
    shape = _operation_model(service, op).input_shape
    return {"--" + xform_name(m, "-") for m in (shape.required_members if shape is not None else [])}


# ---- tests ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def doc_results():
    return run_doc(DOC.read_text())


class OperationsSnippets(unittest.TestCase):
    def assertHolds(self, check):
        problems = check(DOC.read_text(), doc_results())
        self.assertEqual([], problems, "\n".join(problems))

    def test_the_doc_has_the_snippets_this_test_runs(self):
        found = blocks(DOC.read_text())
        self.assertGreaterEqual(len(found), 14, "fewer snippets than the doc had")
        self.assertIn("out()", found[0].code, "the first block is the preamble defining out()")
        self.assertGreater(sum(len(r.calls) for r in doc_results()), 40)

    def test_every_snippet_runs_in_bash_with_errexit_nounset_and_pipefail(self):
        self.assertHolds(check_blocks_run)

    def test_no_comment_sits_inside_a_continued_command_or_reaches_a_program(self):
        self.assertHolds(check_no_comments_in_commands)

    def test_every_aws_call_is_an_allowed_cli_operation_with_its_required_parameters(self):
        self.assertHolds(check_aws_operations)

    def test_every_aws_option_is_one_the_cli_knows_for_that_operation(self):
        self.assertHolds(check_aws_options)

    def test_xray_trace_summaries_always_get_a_time_range(self):
        self.assertHolds(check_xray_time_range)

    def test_the_arm64_switch_reaches_sam_build_and_sam_deploy(self):
        self.assertHolds(check_arm64_reaches_build_and_deploy)

    def test_every_stack_output_the_doc_reads_is_in_the_template(self):
        self.assertHolds(check_stack_outputs_exist)

    def test_the_dlq_section_lists_exactly_the_iam_actions_its_commands_need(self):
        self.assertHolds(check_dlq_permissions)

    def test_the_allow_list_is_the_aws_clis_operations_and_required_parameters(self):
        for (service, op), required in AWS_OPERATIONS.items():
            with self.subTest(operation=f"{service} {op}"):
                self.assertIsNotNone(_operation_model(service, op), f"aws {service} {op} does not exist")
                self.assertEqual(required, cli_required(service, op))
                self.assertLessEqual(EXTRA_REQUIRED.get((service, op), set()), cli_options(service, op))
        self.assertIsNone(_operation_model("sqs", "get-queue-attribute"), "the model lookup must refuse typos")


def _replace(old, new, count=1):
    """A doc mutation replacing `old` (which must be there) by `new`."""
    def mutate(text):
        assert old in text, f"mutation no longer applies: {old!r}"
        return text.replace(old, new, count)
    return mutate


def _comment_in_continuation(text):
    """Re-insert a comment line inside the first backslash-continued command of the deployment
    snippet (the original bug)."""
    start = text.index("resource() {")
    cut = text.index("\\\n", start) + 2
    return text[:cut] + "                 # or another resource\n" + text[cut:]


MUTATIONS = [
    (check_blocks_run, "an unbalanced quote",
     _replace('--query "deploymentInfo.[status,errorInformation.message]"',
              '--query "deploymentInfo.[status,errorInformation.message]')),
    (check_blocks_run, "a command nobody installs",
     _replace("unset WHSEC", "unset WHSEC; jq -n 1")),
    (check_no_comments_in_commands, "a comment inside a continued command", _comment_in_continuation),
    (check_no_comments_in_commands, "a space after a continuing backslash",
     _replace('--visibility-timeout 60 \\\n', '--visibility-timeout 60 \\ \n')),
    (check_no_comments_in_commands, "a comment passed as an argument",
     _replace("aws deploy stop-deployment --deployment-id d-XXXXXXXXX --auto-rollback-enabled",
              "aws deploy stop-deployment --deployment-id d-XXXXXXXXX --auto-rollback-enabled \\#stop")),
    (check_aws_operations, "a misspelt operation",
     _replace("aws sqs get-queue-attributes --queue-url", "aws sqs get-queue-attribute --queue-url")),
    (check_aws_operations, "get-item without its table",
     _replace('aws dynamodb get-item --table-name "$LOG_TABLE" ', "aws dynamodb get-item ")),
    (check_aws_operations, "a query without its key condition",
     _replace('    --key-condition-expression "user_id = :u" \\\n', "")),
    (check_aws_operations, "receive-message without its queue",
     _replace('aws sqs receive-message --queue-url "$DLQ_URL" ', "aws sqs receive-message ")),
    (check_aws_operations, "logs tail without a log group",
     _replace('aws logs tail "/aws/apigateway/$STACK-http-api-access" --since 30m',
              "aws logs tail --since 30m")),
    (check_aws_options, "a misspelt option",
     _replace("--max-number-of-messages 10 --visibility-timeout 60",
              "--max-number-of-message 10 --visibility-timeout 60")),
    (check_xray_time_range, "trace summaries without a start time",
     _replace('--start-time "$START" ', "")),
    (check_xray_time_range, "trace summaries for an empty time range",
     _replace("START=$((END - 1800))", "START=$((END + 1800))")),
    (check_arm64_reaches_build_and_deploy, "arm64 only at deploy",
     _replace('sam build --beta-features --parameter-overrides "$OVERRIDES"', "sam build --beta-features")),
    (check_arm64_reaches_build_and_deploy, "arm64 only at build",
     _replace('sam deploy --config-env "$ENV" --parameter-overrides "$OVERRIDES"',
              'sam deploy --config-env "$ENV"')),
    (check_stack_outputs_exist, "an output the template does not have",
     _replace("DLQ_URL=$(out DeadLetterQueueUrl)", "DLQ_URL=$(out DlqUrl)")),
    (check_dlq_permissions, "redrive without re-encrypting for the events queue",
     _replace("`sqs:SendMessage`, `kms:Decrypt`, `kms:GenerateDataKey` |", "`sqs:SendMessage`, `kms:Decrypt` |")),
    (check_dlq_permissions, "the query's permission missing",
     _replace("| `query` | `dynamodb:Query`, `kms:Decrypt` |", "| `query` | `kms:Decrypt` |")),
    (check_ops_calls, "a misspelt subcommand",
     _replace("clerk-sync-ops redrive --env prod --peek", "clerk-sync-ops redrives --env prod --peek")),
    (check_ops_calls, "a flag the subcommand does not have",
     _replace("clerk-sync-ops reconcile --env prod --fix", "clerk-sync-ops reconcile --env prod --repair")),
    (check_ops_calls, "a call without its environment",
     _replace("clerk-sync-ops inspect --env prod msg_XXXXXXXX", "clerk-sync-ops inspect msg_XXXXXXXX")),
    (check_dlq_permissions, "a command without a permissions row",
     lambda t: re.sub(r"^\| `purge-queue` .*\n", "", t, flags=re.M)),
]


class EachSnippetCheckCanFail(unittest.TestCase):
    def test_every_check_reports_a_doc_that_breaks_its_property(self):
        text = DOC.read_text()
        for check in CHECKS:
            self.assertEqual([], check(text, doc_results()), f"baseline: {check.__name__}")
        for check, description, mutate in MUTATIONS:
            with self.subTest(check=check.__name__, mutation=description):
                broken = mutate(text)
                self.assertNotEqual(text, broken)
                self.assertNotEqual([], check(broken, run_doc(broken)), f"{check.__name__} missed: {description}")

    def test_every_check_has_a_mutation_that_breaks_it(self):
        checks = {name for name, f in globals().items() if name.startswith("check_") and callable(f)}
        self.assertEqual(checks, {c.__name__ for c in CHECKS})
        self.assertEqual(set(), checks - {check.__name__ for check, _, _ in MUTATIONS})


if __name__ == "__main__":
    unittest.main()
