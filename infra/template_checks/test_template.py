"""Safety properties of template.yaml that cfn-lint and `sam validate` cannot know about.

Run: .venv/bin/python -m unittest discover -s infra/template_checks -v   (or `make lint-template`)

Each property is a `check_*` function returning the problems it finds (empty: holds), so that
`EachCheckCanFail` can prove every check fails on a template that breaks it. The template is read
with cfn-lint's YAML loader (it understands !Ref, !Sub, !GetAtt); the IAM checks also run on the
template as SAM expands it, because SAM adds roles and policies of its own.
"""

import copy
import functools
import json
import logging
import os
import re
import tomllib
import unittest
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(os.environ.get("TEMPLATE_PATH", ROOT / "template.yaml"))
SAMCONFIG = ROOT / "samconfig.toml"
logging.getLogger("samtranslator").setLevel(logging.ERROR)  # feature-toggle and metrics chatter

# The contract with the code: each function's environment, exactly, and what each variable points at.
FUNCTION_ENV = {
    "WebhookFunction": {
        "WEBHOOK_SECRET_ID": {"Ref": "WebhookSigningSecret"},
        "EVENTS_QUEUE_URL": {"Ref": "EventsQueue"},
        "SYNCED_EVENT_TYPES": {"Fn::Join": [",", {"Ref": "SyncedEventTypes"}]},
        "WEBHOOK_SECRET_MIN_REFRESH_SECONDS": "30",
        "WEBHOOK_SECRET_MAX_AGE_SECONDS": "900",
    },
    "SyncFunction": {
        "USERS_TABLE": {"Ref": "UsersTable"},
        "EVENT_LOG_TABLE": {"Ref": "EventLogTable"},
        "EVENT_LOG_RETENTION_DAYS": "30",
    },
    # functions/clerk-sync/src/config.rs ApiConfig (empty values count as unset there).
    "ApiFunction": {
        "USERS_TABLE": {"Ref": "UsersTable"},
        "EVENT_LOG_TABLE": {"Ref": "EventLogTable"},
        "EVENT_LOG_RETENTION_DAYS": "30",
        "EVENTS_QUEUE_URL": {"Ref": "EventsQueue"},
        "CLERK_JWKS_URL": {"Ref": "ClerkJwksUrl"},
        "CLERK_JWT_KEY": {"Ref": "ClerkJwtKey"},
        "CLERK_ISSUER": {"Ref": "ClerkIssuer"},
        "CLERK_AUTHORIZED_PARTIES": {"Ref": "ClerkAuthorizedParties"},
        "CLERK_CLOCK_SKEW_SECONDS": "5",
        "CLERK_ADMIN_CLAIM": {"Ref": "ClerkAdminClaim"},
        "CLERK_REFUSE_PENDING_SESSIONS": {"Ref": "ClerkRefusePendingSessions"},
        "CLERK_API_URL": "https://api.clerk.com/v1",
        "CLERK_SECRET_KEY_ID": {"Ref": "ClerkSecretKey"},
        "LAZY_SYNC": {"Ref": "LazySync"},
        "JWKS_MIN_REFRESH_SECONDS": "30",
        "JWKS_MAX_AGE_SECONDS": "300",
    },
    # functions/reconcile/src/lib.rs ReconcileConfig.
    "ReconcileFunction": {
        "USERS_TABLE": {"Ref": "UsersTable"},
        "EVENT_LOG_TABLE": {"Ref": "EventLogTable"},
        "EVENT_LOG_RETENTION_DAYS": "30",
        "CLERK_API_URL": "https://api.clerk.com/v1",
        "CLERK_SECRET_KEY_ID": {"Ref": "ClerkSecretKey"},
        "RECONCILE_SAMPLE": {"Ref": "ReconcileSample"},
        "RECONCILE_FIX": {"Ref": "ReconcileFix"},
    },
    # functions/deploy-check/src/lib.rs Config: the versions this deploy published.
    "DeployCheckFunction": {
        "WEBHOOK_FUNCTION_VERSION": {"Ref": "WebhookFunction.Version"},
        "SYNC_FUNCTION_VERSION": {"Ref": "SyncFunction.Version"},
        "API_FUNCTION_VERSION": {"Ref": "ApiFunction.Version"},
    },
}
FUNCTION_BINARY = {"WebhookFunction": "webhook", "SyncFunction": "sync", "ApiFunction": "api",
                   "DeployCheckFunction": "deploy-check", "ReconcileFunction": "reconcile"}
# The functions CodeDeploy shifts traffic to (alias `live`), and the pre-traffic hook that judges them.
DEPLOYED_FUNCTIONS = ("WebhookFunction", "SyncFunction", "ApiFunction")
HOOK = "DeployCheckFunction"

# The HTTP routes each function serves on the shared HttpApi, exactly (method, path).
FUNCTION_ROUTES = {
    "WebhookFunction": {("POST", "/webhooks/clerk")},
    "ApiFunction": {("GET", "/v1/users/me"), ("GET", "/v1/users/{id}"), ("GET", "/health")},
}

# The contract with the code: every data-plane action a function may take, and on what. The code
# must not need more; adding an action here is a reviewed decision.
FUNCTION_DATA_ACTIONS = {
    "WebhookFunction": {
        ("sqs:SendMessage", "EventsQueue"),
        ("secretsmanager:GetSecretValue", "WebhookSigningSecret"),
        ("kms:GenerateDataKey", "EncryptionKey"),
        ("kms:Decrypt", "EncryptionKey"),
    },
    "SyncFunction": {
        ("sqs:ReceiveMessage", "EventsQueue"),
        ("sqs:DeleteMessage", "EventsQueue"),
        ("sqs:GetQueueAttributes", "EventsQueue"),
        ("dynamodb:GetItem", "UsersTable"),
        ("dynamodb:PutItem", "UsersTable"),
        ("dynamodb:PutItem", "EventLogTable"),
        ("kms:Decrypt", "EncryptionKey"),
        ("kms:Encrypt", "EncryptionKey"),
        ("kms:GenerateDataKey", "EncryptionKey"),
        ("kms:DescribeKey", "EncryptionKey"),
    },
    # Reads and /health (GetItem), lazy sync's conditional write (PutItem) and its event-log
    # record, the queue probe, the Clerk secret key; the key through DynamoDB (as sync) and
    # Secrets Manager. The writes and the Clerk key only with LazySync on
    # (check_api_writes_only_with_lazy_sync); this is the union of both settings.
    "ApiFunction": {
        ("dynamodb:GetItem", "UsersTable"),
        ("dynamodb:PutItem", "UsersTable"),
        ("dynamodb:PutItem", "EventLogTable"),
        ("sqs:GetQueueAttributes", "EventsQueue"),
        ("secretsmanager:GetSecretValue", "ClerkSecretKey"),
        ("kms:Decrypt", "EncryptionKey"),
        ("kms:Encrypt", "EncryptionKey"),
        ("kms:GenerateDataKey", "EncryptionKey"),
        ("kms:DescribeKey", "EncryptionKey"),
    },
    "DeployCheckFunction": set(),  # lambda:InvokeFunction and CodeDeploy only (check_pre_traffic_hook)
    # infra/ops/src/reconcile.rs: the bookkeeping Scan; with ReconcileFix the conditional write
    # (GetItem, PutItem) and its event-log record (check_scheduled_reconcile). Union of both.
    "ReconcileFunction": {
        ("dynamodb:Scan", "UsersTable"),
        ("dynamodb:GetItem", "UsersTable"),
        ("dynamodb:PutItem", "UsersTable"),
        ("dynamodb:PutItem", "EventLogTable"),
        ("secretsmanager:GetSecretValue", "ClerkSecretKey"),
        ("kms:Decrypt", "EncryptionKey"),
        ("kms:Encrypt", "EncryptionKey"),
        ("kms:GenerateDataKey", "EncryptionKey"),
        ("kms:DescribeKey", "EncryptionKey"),
    },
}
# The services through which each function may use the KMS key (kms:ViaService), exactly.
FUNCTION_KMS_VIA = {
    "WebhookFunction": {"sqs", "secretsmanager"},
    "SyncFunction": {"sqs", "dynamodb"},
    "ApiFunction": {"dynamodb", "secretsmanager"},
    "DeployCheckFunction": set(),
    "ReconcileFunction": {"dynamodb", "secretsmanager"},
}
DATA_SERVICES = ("dynamodb", "sqs", "secretsmanager", "kms")

# AWS managed policies a role may carry: none. SAM's own CodeDeploy role would carry
# AWSCodeDeployRoleForLambda (UpdateAlias on every function of the account); the template brings a
# scoped CodeDeployRole instead (check_codedeploy_role).
ALLOWED_MANAGED_POLICIES = ()

REQUIRED_OUTPUTS = {
    "WebhookUrl", "ApiBaseUrl", "ApiHealthUrl", "EventsQueueUrl", "DeadLetterQueueUrl", "UsersTableName",
    "EventLogTableName", "WebhookSecretArn", "ClerkSecretKeyArn", "AlarmTopicArn", "DashboardName",
}

# Names shared with the local stack (infra/devkit/src/resources.rs: `{prefix}-events`, ...).
QUEUE_NAMES = {"EventsQueue": "${AWS::StackName}-events",
               "EventsDeadLetterQueue": "${AWS::StackName}-events-dlq"}
SECRET_NAMES = {"WebhookSigningSecret": "${AWS::StackName}/webhook-signing-secrets",
                "ClerkSecretKey": "${AWS::StackName}/clerk-secret-key"}
MAX_RECEIVE_COUNT = 5


# What samconfig.toml marks a value the user must fill in with; the template refuses it.
PLACEHOLDER = "REPLACE-ME"
# Traffic shifting that leaves the version alarms (2 of 3 one-minute periods, data lagging ~1 min)
# time to decide before all traffic is on the new version.
CANARIES = {"Canary10Percent5Minutes", "Canary10Percent10Minutes", "Canary10Percent15Minutes"}


def load_samconfig(path=SAMCONFIG):
    with open(path, "rb") as f:
        return tomllib.load(f)


def load(path=TEMPLATE):
    """The template as plain dicts and lists (intrinsics in their JSON form)."""
    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def expand(template):
    """The template as SAM's transform turns it into plain CloudFormation, offline."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:  # policy names are only looked up for SAM `Policies: [<name>]`
        def load(self):
            return {}

    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key"  # what `sam package` puts there
    return transform(template, {}, NoManagedPolicies())


def of_type(template, *types):
    return {k: r for k, r in template["Resources"].items() if r["Type"] in types}


def props(resource):
    return resource.get("Properties", {})


def as_list(value):
    return value if isinstance(value, list) else [value]


def target(value):
    """The logical id a !Ref / !GetAtt points at, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else att.split(".")[0]
    return None


def key_id(template):
    keys = list(of_type(template, "AWS::KMS::Key"))
    return keys[0] if len(keys) == 1 else None


def is_cmk(template, value):
    return value is not None and target(value) == key_id(template)


def function_property(template, name, prop):
    """A function's property, falling back to Globals (maps merged as SAM merges them)."""
    local = props(template["Resources"][name]).get(prop)
    glob = template.get("Globals", {}).get("Function", {}).get(prop)
    if isinstance(local, dict) and isinstance(glob, dict):
        return {**glob, **local}
    return local if local is not None else glob


def functions(template):
    return of_type(template, "AWS::Serverless::Function")


# ---------------------------------------------------------------------------------------------
# Checks. Each returns a list of problems.
# ---------------------------------------------------------------------------------------------

def check_tables_on_demand_pitr_cmk(t):
    problems = []
    tables = of_type(t, "AWS::DynamoDB::Table")
    if not tables:
        problems.append("no DynamoDB tables")
    for name, table in tables.items():
        p = props(table)
        if p.get("BillingMode") != "PAY_PER_REQUEST":
            problems.append(f"{name}: BillingMode is not PAY_PER_REQUEST")
        if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
            problems.append(f"{name}: point-in-time recovery is off")
        sse = p.get("SSESpecification", {})
        if sse.get("SSEEnabled") is not True or sse.get("SSEType") != "KMS" or not is_cmk(t, sse.get("KMSMasterKeyId")):
            problems.append(f"{name}: not encrypted with the customer-managed key")
        if p.get("DeletionProtectionEnabled") != {"Ref": "DeletionProtection"}:
            problems.append(f"{name}: deletion protection does not come from the DeletionProtection parameter")
    return problems


def check_users_table_is_retained(t):
    table = t["Resources"].get("UsersTable", {})
    return [f"UsersTable: {policy} is not Retain"
            for policy in ("DeletionPolicy", "UpdateReplacePolicy") if table.get(policy) != "Retain"]


def check_table_keys(t):
    problems = []
    res = t["Resources"]

    def keys(p):
        types = {a["AttributeName"]: a["AttributeType"] for a in p.get("AttributeDefinitions", [])}
        return lambda schema: [(k["AttributeName"], types.get(k["AttributeName"]), k["KeyType"]) for k in schema]

    users = props(res.get("UsersTable", {}))
    if keys(users)(users.get("KeySchema", [])) != [("id", "S", "HASH")]:
        problems.append("UsersTable: key is not id (S, HASH)")
    log = props(res.get("EventLogTable", {}))
    if keys(log)(log.get("KeySchema", [])) != [("svix_id", "S", "HASH")]:
        problems.append("EventLogTable: key is not svix_id (S, HASH)")
    gsis = {g["IndexName"]: g for g in log.get("GlobalSecondaryIndexes", [])}
    by_user = gsis.get("by_user")
    if not by_user:
        problems.append("EventLogTable: no by_user index")
    else:
        if keys(log)(by_user["KeySchema"]) != [("user_id", "S", "HASH"), ("received_at", "N", "RANGE")]:
            problems.append("EventLogTable.by_user: key is not user_id (S, HASH), received_at (N, RANGE)")
        if by_user.get("Projection", {}).get("ProjectionType") != "ALL":
            problems.append("EventLogTable.by_user: projection is not ALL")
    return problems


def check_event_log_ttl(t):
    ttl = props(t["Resources"].get("EventLogTable", {})).get("TimeToLiveSpecification", {})
    if ttl.get("AttributeName") != "expires_at" or ttl.get("Enabled") is not True:
        return ["EventLogTable: TTL is not enabled on expires_at"]
    return []


def check_redrive_to_dlq(t):
    queue = props(t["Resources"].get("EventsQueue", {}))
    redrive = queue.get("RedrivePolicy", {})
    problems = []
    if target(redrive.get("deadLetterTargetArn")) != "EventsDeadLetterQueue":
        problems.append("EventsQueue: RedrivePolicy does not target EventsDeadLetterQueue")
    if redrive.get("maxReceiveCount") != MAX_RECEIVE_COUNT:
        problems.append(f"EventsQueue: maxReceiveCount is {redrive.get('maxReceiveCount')}, not {MAX_RECEIVE_COUNT}")
    dlq = props(t["Resources"].get("EventsDeadLetterQueue", {}))
    if dlq.get("MessageRetentionPeriod") != 1209600:
        problems.append("EventsDeadLetterQueue: retention is not 14 days")
    allow = dlq.get("RedriveAllowPolicy", {})
    if allow.get("redrivePermission") != "byQueue" or len(allow.get("sourceQueueArns", [])) != 1:
        problems.append("EventsDeadLetterQueue: RedriveAllowPolicy does not admit exactly one source queue")
    return problems


def check_visibility_timeout_covers_sync_timeout(t):
    visibility = props(t["Resources"].get("EventsQueue", {})).get("VisibilityTimeout", 30)
    timeout = function_property(t, "SyncFunction", "Timeout") or 3
    if visibility < 6 * timeout:
        return [f"EventsQueue: VisibilityTimeout {visibility} < 6 x SyncFunction Timeout {timeout}"]
    return []


def check_everything_at_rest_is_encrypted_with_the_cmk(t):
    problems = []
    if key_id(t) is None:
        return ["not exactly one AWS::KMS::Key"]
    key = t["Resources"][key_id(t)]
    if props(key).get("EnableKeyRotation") is not True:
        problems.append("the KMS key does not rotate")
    if key.get("DeletionPolicy") != "Retain":
        problems.append("the KMS key is not retained (the retained users table would become unreadable)")
    encryption_property = {
        "AWS::SQS::Queue": "KmsMasterKeyId",
        "AWS::SNS::Topic": "KmsMasterKeyId",
        "AWS::SecretsManager::Secret": "KmsKeyId",
        "AWS::Logs::LogGroup": "KmsKeyId",
    }
    for name, resource in of_type(t, *encryption_property).items():
        if not is_cmk(t, props(resource).get(encryption_property[resource["Type"]])):
            problems.append(f"{name}: not encrypted with the customer-managed key")
    return problems


def check_queues_deny_plain_http(t):
    covered = set()
    for policy in of_type(t, "AWS::SQS::QueuePolicy").values():
        p = props(policy)
        for stmt in p["PolicyDocument"]["Statement"]:
            if (stmt.get("Effect") == "Deny" and stmt.get("Principal") == "*"
                    and "sqs:*" in as_list(stmt.get("Action"))
                    and stmt.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)):
                covered |= {target(q) for q in p["Queues"]}
    return [f"{q}: no policy denies requests without TLS"
            for q in of_type(t, "AWS::SQS::Queue") if q not in covered]


def check_sqs_event_source(t):
    events = [e for e in (props(functions(t).get("SyncFunction", {})).get("Events") or {}).values()
              if e["Type"] == "SQS"]
    if len(events) != 1:
        return ["SyncFunction: not exactly one SQS event"]
    p = events[0]["Properties"]
    problems = []
    if target(p.get("Queue")) != "EventsQueue":
        problems.append("SyncFunction SQS event: not on EventsQueue")
    if p.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
        problems.append("SyncFunction SQS event: no ReportBatchItemFailures (a failure would retry the whole batch)")
    if p.get("ScalingConfig", {}).get("MaximumConcurrency") != {"Ref": "SyncMaxConcurrency"}:
        problems.append("SyncFunction SQS event: MaximumConcurrency is not the SyncMaxConcurrency parameter")
    if p.get("BatchSize") != 10 or p.get("MaximumBatchingWindowInSeconds") != 1:
        problems.append("SyncFunction SQS event: batch is not 10 messages / 1 s window")
    return problems


def check_functions_log_to_own_group_with_retention(t):
    problems = []
    groups = of_type(t, "AWS::Logs::LogGroup")
    for name, group in groups.items():
        if "RetentionInDays" not in props(group):
            problems.append(f"{name}: no RetentionInDays (logs kept forever)")
    seen = {}
    for name in functions(t):
        logging = function_property(t, name, "LoggingConfig") or {}
        group = target(logging.get("LogGroup"))
        if group not in groups:
            problems.append(f"{name}: LoggingConfig.LogGroup is not an explicit AWS::Logs::LogGroup")
        elif group in seen:
            problems.append(f"{name}: shares log group {group} with {seen[group]}")
        else:
            seen[group] = name
        if logging.get("LogFormat") != "JSON":
            problems.append(f"{name}: LogFormat is not JSON")
    return problems


def check_function_runtime(t):
    problems = []
    for name, fn in functions(t).items():
        expected = {"Runtime": "provided.al2023", "Handler": "bootstrap", "Tracing": "Active",
                    "Architectures": [{"Ref": "Architecture"}], "CodeUri": "."}
        for prop, value in expected.items():
            if function_property(t, name, prop) != value:
                problems.append(f"{name}: {prop} is {function_property(t, name, prop)!r}, not {value!r}")
        meta = fn.get("Metadata", {})
        if meta.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{name}: not built with rust-cargolambda")
        if meta.get("BuildProperties", {}).get("Binary") != FUNCTION_BINARY.get(name):
            problems.append(f"{name}: builds binary {meta.get('BuildProperties', {}).get('Binary')!r}, "
                            f"expected {FUNCTION_BINARY.get(name)!r}")
    return problems


def check_function_environments(t):
    problems = []
    for name in functions(t):
        if name not in FUNCTION_ENV:
            problems.append(f"{name}: environment not documented in FUNCTION_ENV")
            continue
        env = (function_property(t, name, "Environment") or {}).get("Variables", {})
        if set(env) != set(FUNCTION_ENV[name]):
            problems.append(f"{name}: env vars {sorted(env)} != documented {sorted(FUNCTION_ENV[name])}")
        for var, value in FUNCTION_ENV[name].items():
            if var in env and env[var] != value:
                problems.append(f"{name}: {var} is {env[var]!r}, expected {value!r}")
    return problems


def iam_statements(template):
    """(where, statement) for every statement of every identity policy in a (SAM-expanded) template."""
    for name, resource in of_type(template, "AWS::IAM::Role", "AWS::IAM::Policy",
                                  "AWS::IAM::ManagedPolicy").items():
        p = props(resource)
        documents = [pol["PolicyDocument"] for pol in p.get("Policies", [])]
        if "PolicyDocument" in p:
            documents.append(p["PolicyDocument"])
        for document in documents:
            for stmt in as_list(document.get("Statement", [])):
                for branch in if_branches(stmt):
                    yield name, branch


def if_branches(value):
    """A statement, or both branches of a conditional one (Fn::If, AWS::NoValue dropped): what the
    role may grant under some parameters."""
    if isinstance(value, dict) and list(value) == ["Fn::If"]:
        _, yes, no = value["Fn::If"]
        return [b for branch in (yes, no) for b in if_branches(branch)]
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def check_no_wildcard_iam(t):
    problems = []
    expanded = expand(t)
    for where, stmt in iam_statements(expanded):
        if stmt.get("Effect") != "Allow":
            continue
        if "NotAction" in stmt or "NotResource" in stmt:
            problems.append(f"{where}: Allow with NotAction/NotResource")
        actions = [a for a in as_list(stmt.get("Action", [])) if isinstance(a, str)]
        resources = as_list(stmt.get("Resource", []))
        data = [a for a in actions if a.split(":")[0] in DATA_SERVICES]
        for action in actions:
            if action == "*" or re.fullmatch(r"[a-z0-9-]+:\*", action):
                problems.append(f"{where}: action {action!r}")
        for action in data:
            if "*" in action:
                problems.append(f"{where}: wildcard data action {action!r}")
        wildcard_resources = [r for r in resources
                              if (isinstance(r, str) and "*" in r)
                              or (isinstance(r, dict) and "*" in json.dumps(r.get("Fn::Sub", "")))]
        if data and wildcard_resources:
            problems.append(f"{where}: data actions {data} on {wildcard_resources}")
    for name, role in of_type(expanded, "AWS::IAM::Role").items():
        for arn in props(role).get("ManagedPolicyArns", []):
            if not (isinstance(arn, str) and arn.endswith(ALLOWED_MANAGED_POLICIES)):
                problems.append(f"{name}: managed policy {arn} (AWS managed policies grant on Resource '*')")
    return problems


def check_function_data_actions(t):
    problems = []
    statements = list(iam_statements(expand(t)))
    for name in functions(t):
        role = target(function_property(t, name, "Role"))
        if role is None:
            problems.append(f"{name}: no explicit Role (SAM would attach AWS managed policies)")
            continue
        granted = set()
        for where, stmt in statements:
            if where != role or stmt.get("Effect") != "Allow":
                continue
            for action in as_list(stmt.get("Action", [])):
                if action.split(":")[0] in DATA_SERVICES:
                    granted |= {(action, target(r) or json.dumps(r)) for r in as_list(stmt.get("Resource", []))}
        expected = FUNCTION_DATA_ACTIONS.get(name, set())
        for extra in sorted(granted - expected):
            problems.append(f"{name}: grants {extra}, not in FUNCTION_DATA_ACTIONS")
        for missing in sorted(expected - granted):
            problems.append(f"{name}: lacks {missing}")
    return problems


def via_services(condition):
    """The service names (dynamodb, sqs, ...) a kms:ViaService StringEquals condition admits."""
    services = set()
    for value in as_list((condition or {}).get("StringEquals", {}).get("kms:ViaService", [])):
        text = value.get("Fn::Sub", "") if isinstance(value, dict) else value
        match = re.fullmatch(r"([a-z0-9-]+)\.(\$\{AWS::Region\}|[a-z0-9-]+)\.amazonaws\.com", text or "")
        services.add(match.group(1) if match else f"<unparsed {value!r}>")
    return services


def check_function_kms_via_service(t):
    """Function roles use the key only through the services their data lives in, never directly."""
    problems = []
    statements = list(iam_statements(expand(t)))
    for name in functions(t):
        role = target(function_property(t, name, "Role"))
        services = set()
        for where, stmt in statements:
            if where != role or stmt.get("Effect") != "Allow":
                continue
            if not any(a.startswith("kms:") for a in as_list(stmt.get("Action", [])) if isinstance(a, str)):
                continue
            via = via_services(stmt.get("Condition"))
            if not via:
                problems.append(f"{name}: KMS statement {stmt.get('Sid')} is not conditioned on kms:ViaService")
            services |= via
        expected = FUNCTION_KMS_VIA.get(name, set())
        if services != expected:
            problems.append(f"{name}: uses the key via {sorted(services)}, documented {sorted(expected)}")
    return problems


def check_key_policy(t):
    problems = []
    key = t["Resources"].get(key_id(t) or "", {})
    root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    crypto = re.compile(r"kms:(Encrypt|Decrypt|ReEncrypt|GenerateDataKey)")
    for stmt in props(key).get("KeyPolicy", {}).get("Statement", []):
        if stmt.get("Effect") != "Allow":
            continue
        principal = stmt.get("Principal", {})
        actions = as_list(stmt.get("Action", []))
        if "kms:*" in actions or "*" in actions:
            if principal != {"AWS": root}:
                problems.append(f"key policy {stmt.get('Sid')}: kms:* for {principal}, not the account root")
        elif principal == "*" or principal.get("AWS") == "*":
            problems.append(f"key policy {stmt.get('Sid')}: open to every principal")
        elif "Service" in principal and any(crypto.match(a) for a in actions) and not stmt.get("Condition"):
            problems.append(f"key policy {stmt.get('Sid')}: unconditioned cryptographic use by {principal}")
    return problems


def check_http_functions_deploy_gradually(t):
    problems = []
    alarms = of_type(t, "AWS::CloudWatch::Alarm")
    for name, fn in functions(t).items():
        events = (props(fn).get("Events") or {}).values()
        if not any(e["Type"] in ("HttpApi", "Api") for e in events):
            continue
        if not props(fn).get("AutoPublishAlias"):
            problems.append(f"{name}: HTTP-facing without AutoPublishAlias")
        pref = props(fn).get("DeploymentPreference") or {}
        if not pref.get("Type"):
            problems.append(f"{name}: HTTP-facing without DeploymentPreference")
        refs = [target(a) for a in pref.get("Alarms", [])]
        if not refs or any(r not in alarms for r in refs):
            problems.append(f"{name}: DeploymentPreference has no alarms of this template to roll back on")
            continue
        watches_errors = any(
            props(alarms[r]).get("Namespace") == "AWS/Lambda" and props(alarms[r]).get("MetricName") == "Errors"
            and {"Name": "FunctionName", "Value": {"Ref": name}} in props(alarms[r]).get("Dimensions", [])
            for r in refs)
        if not watches_errors:
            problems.append(f"{name}: no rollback alarm on the function's own Errors (crashes, timeouts)")
    return problems


EXTERNAL_TOPIC_ACTION = {"Fn::If": ["HasAlarmNotificationTopic", {"Ref": "AlarmNotificationTopicArn"},
                                     {"Ref": "AWS::NoValue"}]}


def check_alarms_notify_the_topic(t):
    problems = []
    topics = of_type(t, "AWS::SNS::Topic")
    for name, alarm in of_type(t, "AWS::CloudWatch::Alarm").items():
        p = props(alarm)
        if not any(target(a) in topics for a in p.get("AlarmActions", [])):
            problems.append(f"{name}: does not notify the alarm topic")
        if EXTERNAL_TOPIC_ACTION not in p.get("AlarmActions", []):
            problems.append(f"{name}: does not notify AlarmNotificationTopicArn when it is set")
        if "TreatMissingData" not in p:
            problems.append(f"{name}: TreatMissingData not decided")
    for name, sub in of_type(t, "AWS::SNS::Subscription").items():
        if sub.get("Condition") != "HasAlarmEmail":
            problems.append(f"{name}: email subscription not conditional on AlarmEmail")
    return problems


def http_routes(t):
    """{function: {(method, path)}} of every HttpApi event."""
    return {name: {(e["Properties"].get("Method"), e["Properties"].get("Path"))
                   for e in (props(fn).get("Events") or {}).values() if e["Type"] in ("HttpApi", "Api")}
            for name, fn in functions(t).items()}


def check_http_routes(t):
    """Each function serves exactly its documented routes, on the shared HttpApi, without an
    API Gateway authorizer (the webhook checks signatures, the api verifies tokens itself)."""
    problems = []
    for name, routes in http_routes(t).items():
        if routes != FUNCTION_ROUTES.get(name, set()):
            problems.append(f"{name}: routes {sorted(routes)} != documented {sorted(FUNCTION_ROUTES.get(name, set()))}")
        for event_name, e in (props(functions(t)[name]).get("Events") or {}).items():
            if e["Type"] not in ("HttpApi", "Api"):
                continue
            p = e.get("Properties", {})
            if e["Type"] != "HttpApi" or p.get("ApiId") != {"Ref": "HttpApi"}:
                problems.append(f"{name}.{event_name}: not an event on the shared HttpApi")
            if "Auth" in p:
                problems.append(f"{name}.{event_name}: has an API Gateway authorizer")
            if p.get("PayloadFormatVersion") != "2.0":
                problems.append(f"{name}.{event_name}: payload format is not 2.0")
    if props(t["Resources"].get("HttpApi", {})).get("Auth"):
        problems.append("HttpApi: has an authorizer")
    return problems


def check_alarm_routes_exist(t):
    """Every Route dimension an alarm watches is a route of this template (a typo would make the
    alarm watch a metric that never exists, and a canary roll forward unwatched)."""
    served = {f"{method} {path}" for routes in http_routes(t).values() for method, path in routes}
    problems = []
    for name, alarm in of_type(t, "AWS::CloudWatch::Alarm").items():
        p = props(alarm)
        dimension_lists = [p.get("Dimensions", [])] + [
            m.get("MetricStat", {}).get("Metric", {}).get("Dimensions", []) for m in p.get("Metrics", [])]
        for dimensions in dimension_lists:
            for d in dimensions:
                if d.get("Name") == "Route" and d.get("Value") not in served:
                    problems.append(f"{name}: watches route {d.get('Value')!r}, which no function serves")
    return problems


def check_clerk_token_parameters(t):
    """The api cannot start without a key source: the deploy is refused instead (Rules)."""
    problems = []
    params = t.get("Parameters", {})
    if params.get("ClerkJwtKey", {}).get("NoEcho") is not True:
        problems.append("ClerkJwtKey: not NoEcho")
    if [str(v) for v in params.get("LazySync", {}).get("AllowedValues", [])] != ["true", "false"]:
        problems.append("LazySync: allowed values are not true/false (the code refuses anything else)")
    pending = params.get("ClerkRefusePendingSessions", {})
    if [str(v) for v in pending.get("AllowedValues", [])] != ["true", "false"]:
        problems.append("ClerkRefusePendingSessions: allowed values are not true/false (the code refuses anything else)")
    if str(pending.get("Default")) != "false":
        problems.append("ClerkRefusePendingSessions: not off by default (it is an opt-in)")

    def set_(param):
        return {"Fn::Not": [{"Fn::Equals": [{"Ref": param}, ""]}]}

    wanted = [set_("ClerkJwksUrl"), set_("ClerkJwtKey")]
    asserts = [a.get("Assert") for rule in t.get("Rules", {}).values()
               if "RuleCondition" not in rule for a in rule.get("Assertions", [])]
    if not any(isinstance(a, dict) and sorted(map(json.dumps, a.get("Fn::Or", []))) == sorted(map(json.dumps, wanted))
               for a in asserts):
        problems.append("Rules: no unconditional assertion that ClerkJwksUrl or ClerkJwtKey is set")
    return problems


def check_http_api(t):
    problems = []
    api = props(t["Resources"].get("HttpApi", {}))
    route = api.get("DefaultRouteSettings", {})
    if not route.get("ThrottlingBurstLimit") or not route.get("ThrottlingRateLimit"):
        problems.append("HttpApi: no default route throttling")
    logs = api.get("AccessLogSettings", {})
    if target(logs.get("DestinationArn")) not in of_type(t, "AWS::Logs::LogGroup"):
        problems.append("HttpApi: access logs do not go to a log group of this template")
    sample = re.sub(r"\$context\.[A-Za-z.]+", "1", logs.get("Format", ""))
    try:
        fields = set(json.loads(sample))
    except ValueError:
        return problems + ["HttpApi: access log format is not JSON"]
    for field in ("requestId", "ip", "routeKey", "status", "latency", "integrationStatus", "error"):
        if field not in fields:
            problems.append(f"HttpApi: access log lacks {field}")
    problems += cors_problems(api.get("CorsConfiguration"))
    return problems


# What the local gateway emulates (infra/local-stack): browsers may GET with a bearer token, from
# the ClerkAuthorizedParties origins only, and read the two headers a client acts on.
CORS = {"AllowMethods": ["GET"], "AllowHeaders": ["authorization"],
        "ExposeHeaders": ["retry-after", "www-authenticate"], "MaxAge": 600}


def cors_problems(cors):
    if not (isinstance(cors, dict) and list(cors) == ["Fn::If"]):
        return ["HttpApi: CORS is not conditional on ClerkAuthorizedParties"]
    condition, on, off = cors["Fn::If"]
    problems = []
    if condition != "HasAuthorizedParties" or off != {"Ref": "AWS::NoValue"}:
        problems.append("HttpApi: CORS must be off unless ClerkAuthorizedParties is set")
    if on.get("AllowOrigins") != {"Fn::Split": [",", {"Ref": "ClerkAuthorizedParties"}]}:
        problems.append("HttpApi: CORS origins are not exactly ClerkAuthorizedParties")
    if on.get("AllowCredentials"):
        problems.append("HttpApi: CORS allows credentials (cookies); the token is a header")
    for key, value in CORS.items():
        if on.get(key) != value:
            problems.append(f"HttpApi: CORS {key} is {on.get(key)!r}, not {value!r}")
    return problems


def check_outputs(t):
    outputs = t.get("Outputs", {})
    problems = [f"output {o} missing" for o in sorted(REQUIRED_OUTPUTS - set(outputs))]
    url = outputs.get("WebhookUrl", {}).get("Value", {})
    if url != {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/webhooks/clerk"}:
        problems.append(f"WebhookUrl is {url!r}")
    return problems


def check_shared_names(t):
    problems = []
    res = t["Resources"]
    for name, expected in QUEUE_NAMES.items():
        if props(res.get(name, {})).get("QueueName") != {"Fn::Sub": expected}:
            problems.append(f"{name}: QueueName is not {expected}")
    for name, expected in SECRET_NAMES.items():
        if props(res.get(name, {})).get("Name") != {"Fn::Sub": expected}:
            problems.append(f"{name}: Name is not {expected}")
    for name, secret in of_type(t, "AWS::SecretsManager::Secret").items():
        if "SecretString" in props(secret) or "GenerateSecretString" not in props(secret):
            problems.append(f"{name}: value in the template instead of a generated placeholder")
    return problems


def parameter_problems(t, name, value):
    """Why CloudFormation would refuse `value` for parameter `name` (what sam deploy would pass)."""
    spec = t.get("Parameters", {}).get(name)
    if spec is None:
        return [f"{name} is not a template parameter"]
    problems = []
    values = value.split(",") if spec["Type"] == "CommaDelimitedList" else [value]
    for item in values:
        if "AllowedValues" in spec and item not in [str(v) for v in spec["AllowedValues"]]:
            problems.append(f"{name}={item!r} not in {spec['AllowedValues']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        problems.append(f"{name}={value!r} does not match {spec['AllowedPattern']}")
    if spec["Type"] == "Number":
        if not re.fullmatch(r"-?\d+(\.\d+)?", value):
            problems.append(f"{name}={value!r} is not a number")
        elif not spec.get("MinValue", float("-inf")) <= float(value) <= spec.get("MaxValue", float("inf")):
            problems.append(f"{name}={value!r} outside [{spec.get('MinValue')}, {spec.get('MaxValue')}]")
    return problems


def check_samconfig_environments(t, config=None):
    config = load_samconfig() if config is None else config
    problems = []
    stacks = {}
    for env in ("default", "dev", "staging", "prod"):
        section = config.get(env, {})
        build = section.get("build", {}).get("parameters", {})
        deploy = section.get("deploy", {}).get("parameters", {})
        shared = section.get("global", {}).get("parameters", {})
        if "stack_name" in deploy:
            problems.append(f"{env}: stack_name in deploy, not global (`sam list`, `sam logs` and `sam delete` would not find the stack)")
        if build.get("beta_features") is not True:
            problems.append(f"{env}: build without beta_features (rust-cargolambda needs them)")
        if "CAPABILITY_IAM" not in deploy.get("capabilities", "").split():
            problems.append(f"{env}: deploy without CAPABILITY_IAM")
        if deploy.get("resolve_s3") is not True:
            problems.append(f"{env}: deploy without resolve_s3")
        overrides = dict(re.findall(r'(\w+)="([^"]*)"', deploy.get("parameter_overrides", "")))
        for name, value in overrides.items():
            if PLACEHOLDER in value:
                # A value the user must fill in: the template must refuse it as it stands, and
                # accept it once filled in.
                if not parameter_problems(t, name, value):
                    problems.append(f"{env}: {name}={value!r} would deploy with its placeholder")
                value = value.replace(PLACEHOLDER, "example")
            problems += [f"{env}: {p}" for p in parameter_problems(t, name, value)]
        if overrides.get("EnvironmentName") not in (env, "dev" if env == "default" else None):
            problems.append(f"{env}: EnvironmentName override is {overrides.get('EnvironmentName')!r}")
        if not (overrides.get("ClerkJwksUrl") or overrides.get("ClerkJwtKey")):
            problems.append(f"{env}: neither ClerkJwksUrl nor ClerkJwtKey set (the template's Rules refuse the deploy)")
        if env in ("staging", "prod"):
            for name in ("ClerkIssuer", "ClerkAuthorizedParties"):
                if not overrides.get(name):
                    problems.append(f"{env}: {name} not set (tokens of other issuers or sites would pass)")
            if not (overrides.get("AlarmEmail") or overrides.get("AlarmNotificationTopicArn")):
                problems.append(f"{env}: no alarm subscriber (the template's Rules refuse the deploy)")
            if overrides.get("DeploymentStrategy") not in CANARIES:
                problems.append(f"{env}: DeploymentStrategy {overrides.get('DeploymentStrategy')!r} is not a canary "
                                f"long enough for the version alarms ({sorted(CANARIES)})")
        if env == "prod":
            if deploy.get("confirm_changeset") is not True:
                problems.append("prod: change sets are not confirmed by a human")
            if overrides.get("DeletionProtection") != "true":
                problems.append("prod: tables not deletion-protected")
        stacks[env] = shared.get("stack_name")
    if stacks["default"] != stacks["dev"]:
        problems.append("default is not dev")
    names = [stacks[e] for e in ("dev", "staging", "prod")]
    if len(set(names)) != 3 or None in names:
        problems.append(f"stack names not distinct per environment: {names}")
    return problems


def version_of(fn):
    """How the template names the version a deploy publishes (SAM resolves it to the new
    AWS::Lambda::Version's number)."""
    return {"Fn::GetAtt": [fn, "Version.Version"]}


# What each function's canary must judge its new version on: crashes (AWS/Lambda Errors) and the
# EMF metrics of issue 11 (functions/*/src: webhook refusals and 5xx, sync failed items, api 5xx
# and latency).
CANARY_METRICS = {
    "WebhookFunction": {"Errors", "ServerErrors", "ClientErrors"},
    "SyncFunction": {"Errors", "MessagesFailed"},
    "ApiFunction": {"Errors", "ServerErrors", "Latency"},
}
# The shortest canary's 10 % phase; an alarm must be able to decide inside it.
CANARY_WINDOW_SECONDS = 300


def alarm_metrics(alarm):
    """(namespace, metric name, {dimension: value}, period) of every metric an alarm reads."""
    p = props(alarm)
    if "MetricName" in p:
        return [(p.get("Namespace"), p["MetricName"], {d["Name"]: d["Value"] for d in p.get("Dimensions", [])},
                 p.get("Period"))]
    found = []
    for m in p.get("Metrics", []):
        stat = m.get("MetricStat")
        if stat:
            metric = stat["Metric"]
            found.append((metric.get("Namespace"), metric.get("MetricName"),
                          {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}, stat.get("Period")))
    return found


def version_scoped(fn, namespace, dimensions):
    if namespace == "AWS/Lambda":
        return dimensions == {"FunctionName": {"Ref": fn}, "Resource": {"Fn::Sub": "${%s}:live" % fn},
                              "ExecutedVersion": version_of(fn)}
    return namespace == "ClerkSync" and dimensions == {"Function": {"Ref": fn}, "Version": version_of(fn)}


def check_canary_alarms_judge_the_new_version(t):
    """Every DeploymentPreference rolls back on alarms that watch only the version being deployed,
    on the metrics that show it failing, and that can decide within the canary."""
    problems = []
    alarms = of_type(t, "AWS::CloudWatch::Alarm")
    for fn in DEPLOYED_FUNCTIONS:
        pref = props(t["Resources"].get(fn, {})).get("DeploymentPreference") or {}
        refs = [target(a) for a in pref.get("Alarms", [])]
        watched = set()
        for ref in refs:
            if ref not in alarms:
                problems.append(f"{fn}: canary alarm {ref!r} is not an alarm of this template")
                continue
            p = props(alarms[ref])
            metrics = alarm_metrics(alarms[ref])
            for namespace, metric, dimensions, period in metrics:
                if not version_scoped(fn, namespace, dimensions):
                    problems.append(f"{ref}: {namespace}/{metric} is not scoped to {fn}'s new version ({dimensions})")
                if period != 60:
                    problems.append(f"{ref}: {metric} period {period}, not 60 s")
                watched.add(metric)
            if p.get("TreatMissingData") != "notBreaching":
                problems.append(f"{ref}: missing data is not notBreaching (absent metrics mean nothing happened)")
            if p.get("EvaluationPeriods", 1) * 60 > CANARY_WINDOW_SECONDS - 120:
                problems.append(f"{ref}: {p.get('EvaluationPeriods')} periods cannot decide in a "
                                f"{CANARY_WINDOW_SECONDS} s canary (data lags ~1 min)")
            expressions = [m.get("Expression", "") for m in p.get("Metrics", []) if "Expression" in m]
            if expressions and not any("FILL(" in e for e in expressions):
                problems.append(f"{ref}: metric math without FILL (EMF metrics are absent, not zero)")
            rates = [e for e in expressions if "/" in e]
            if rates and not all(re.search(r">= ?\d+", e) for e in rates):
                problems.append(f"{ref}: a rate without a minimum volume")
        for metric in sorted(CANARY_METRICS[fn] - watched):
            problems.append(f"{fn}: the canary does not judge the new version's {metric}")
    return problems


def check_auto_publish_all_properties(t):
    """A configuration change publishes a version too, so it goes through the hook and the canary."""
    return [f"{fn}: AutoPublishAliasAllProperties is not true"
            for fn in DEPLOYED_FUNCTIONS
            if props(t["Resources"].get(fn, {})).get("AutoPublishAliasAllProperties") is not True
            or props(t["Resources"].get(fn, {})).get("AutoPublishAlias") != "live"]


def check_pre_traffic_hook(t):
    """Each deployment runs the deploy-check hook before any traffic shifts; the hook checks the
    versions this deploy published and may only invoke them and report to CodeDeploy."""
    problems = []
    hook = t["Resources"].get(HOOK)
    if hook is None or hook["Type"] != "AWS::Serverless::Function":
        return [f"no {HOOK} function"]
    for fn in DEPLOYED_FUNCTIONS:
        pref = props(t["Resources"][fn]).get("DeploymentPreference") or {}
        if pref.get("Hooks", {}).get("PreTraffic") != {"Ref": HOOK}:
            problems.append(f"{fn}: no PreTraffic hook {HOOK}")
    hp = props(hook)
    if "AutoPublishAlias" in hp or "DeploymentPreference" in hp:
        problems.append(f"{HOOK}: deploys through CodeDeploy itself (it would judge its own release)")
    env = (hp.get("Environment") or {}).get("Variables", {})
    for fn in DEPLOYED_FUNCTIONS:
        if {"Ref": f"{fn}.Version"} not in env.values():
            problems.append(f"{HOOK}: does not get {fn}'s new version (!Ref {fn}.Version)")
    if not 30 <= int(hp.get("Timeout", 3)) <= 300:
        problems.append(f"{HOOK}: Timeout {hp.get('Timeout')} does not cover three invocations of up to 25 s")
    role = target(hp.get("Role"))
    allowed = {
        "lambda:InvokeFunction": [{"Fn::Sub": "${%s.Arn}:*" % fn} for fn in DEPLOYED_FUNCTIONS],
        "codedeploy:PutLifecycleEventHookExecutionStatus": [{"Fn::Sub": (
            "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:"
            "${ServerlessDeploymentApplication}/*")}],
    }
    granted = set()
    for where, stmt in iam_statements(expand(t)):
        if where != role or stmt.get("Effect") != "Allow":
            continue
        for action in as_list(stmt.get("Action", [])):
            if action.split(":")[0] in ("logs", "xray"):
                continue
            resources = as_list(stmt.get("Resource", []))
            if action not in allowed or any(r not in allowed[action] for r in resources):
                problems.append(f"{HOOK}: may {action} on {resources}")
            granted.add(action)
    for action in sorted(set(allowed) - granted):
        problems.append(f"{HOOK}: lacks {action}")
    return problems


def rules(t):
    """(RuleCondition or None, Assert) of every assertion of every Rule."""
    return [(rule.get("RuleCondition"), a.get("Assert"))
            for rule in t.get("Rules", {}).values() for a in rule.get("Assertions", [])]


def applies_to(condition, env):
    """Whether a RuleCondition (built from EnvironmentName) holds for `env`; None always holds."""
    if condition is None:
        return True
    environment = {"Ref": "EnvironmentName"}
    if "Fn::Contains" in condition:
        values, ref = condition["Fn::Contains"]
        return ref == environment and env in values
    if "Fn::Equals" in condition:
        return environment in condition["Fn::Equals"] and env in condition["Fn::Equals"]
    if "Fn::Or" in condition:
        return any(applies_to(c, env) for c in condition["Fn::Or"])
    return False


def is_set(param):
    return {"Fn::Not": [{"Fn::Equals": [{"Ref": param}, ""]}]}


def opted_out(param):
    return {"Fn::Equals": [{"Ref": param}, "true"]}


def asserted_in(t, assertion, envs):
    """An assertion equal to `assertion` (Fn::Or in any order) in rules that hold in every env."""
    def same(a, b):
        if isinstance(a, dict) and isinstance(b, dict) and "Fn::Or" in a and "Fn::Or" in b:
            return sorted(map(json.dumps, a["Fn::Or"])) == sorted(map(json.dumps, b["Fn::Or"]))
        return a == b
    return any(same(a, assertion) and all(applies_to(c, e) for e in envs) for c, a in rules(t))


def opt_out_problems(t, param):
    spec = t.get("Parameters", {}).get(param, {})
    if [str(v) for v in spec.get("AllowedValues", [])] != ["true", "false"] or str(spec.get("Default")) != "false":
        return [f"{param}: not a true/false opt-out that is off by default"]
    return []


def check_alarm_subscriber_rule(t):
    """Staging and prod refuse to deploy unless an email or an existing SNS topic gets the alarms."""
    problems = []
    params = t.get("Parameters", {})
    for name in ("AlarmEmail", "AlarmNotificationTopicArn"):
        if params.get(name, {}).get("Default") != "":
            problems.append(f"{name}: not an optional parameter")
    if not asserted_in(t, {"Fn::Or": [is_set("AlarmEmail"), is_set("AlarmNotificationTopicArn")]}, ("staging", "prod")):
        problems.append("Rules: staging and prod may deploy without an alarm subscriber")
    return problems


def check_staging_and_prod_token_rules(t):
    """Staging and prod refuse to deploy without an issuer, and without authorized parties unless
    the opt-out says so."""
    problems = opt_out_problems(t, "AllowAnyAuthorizedParty")
    if not asserted_in(t, is_set("ClerkIssuer"), ("staging", "prod")):
        problems.append("Rules: staging and prod may deploy without ClerkIssuer")
    if not asserted_in(t, {"Fn::Or": [is_set("ClerkAuthorizedParties"), opted_out("AllowAnyAuthorizedParty")]},
                       ("staging", "prod")):
        problems.append("Rules: staging and prod may deploy without ClerkAuthorizedParties (and no opt-out)")
    return problems


def check_deletes_rule(t):
    """A SyncedEventTypes without user.deleted is refused unless AllowIgnoringDeletes opts out."""
    problems = opt_out_problems(t, "AllowIgnoringDeletes")
    spec = t.get("Parameters", {}).get("SyncedEventTypes", {})
    if spec.get("Type") != "CommaDelimitedList":
        problems.append("SyncedEventTypes: not a CommaDelimitedList (a Rule could not look inside it)")
    if "user.deleted" not in str(spec.get("Default", "")).split(","):
        problems.append("SyncedEventTypes: the default drops user.deleted")
    contains = {"Fn::Contains": [{"Ref": "SyncedEventTypes"}, "user.deleted"]}
    if not asserted_in(t, {"Fn::Or": [contains, opted_out("AllowIgnoringDeletes")]}, ("dev", "staging", "prod")):
        problems.append("Rules: a SyncedEventTypes without user.deleted deploys")
    return problems


# A placeholder in the shape of each free-text parameter's real value: the template must refuse it
# and accept the same value filled in. A new free-text parameter must be added here.
PLACEHOLDER_SAMPLES = {
    "AlarmEmail": "oncall@REPLACE-ME.example",
    "AlarmNotificationTopicArn": "arn:aws:sns:us-east-1:123456789012:REPLACE-ME",
    "ClerkJwksUrl": "https://REPLACE-ME.clerk.accounts.dev/.well-known/jwks.json",
    "ClerkIssuer": "https://clerk.REPLACE-ME.example",
    "ClerkAuthorizedParties": "https://app.REPLACE-ME.example,https://admin.example.com",
    "ClerkAdminClaim": "metadata.role=REPLACE-ME",
    "SecretsAdminRoleArn": "arn:aws:iam::123456789012:role/REPLACE-ME",
}
# Not free text a placeholder could hide in: the PEM (NoEcho, its own format), and the scheduled
# reconcile's schedule and budget, whose patterns admit only rate(...)/cron(...) and a number/all.
PLACEHOLDER_EXEMPT = {"ClerkJwtKey", "ReconcileSchedule", "ReconcileSample"}


def check_placeholders_refused(t):
    problems = []
    for name, spec in t.get("Parameters", {}).items():
        if spec["Type"] != "String" or "AllowedValues" in spec or name in PLACEHOLDER_EXEMPT:
            continue
        sample = PLACEHOLDER_SAMPLES.get(name)
        if sample is None:
            problems.append(f"{name}: free text with no placeholder sample (PLACEHOLDER_SAMPLES)")
            continue
        if not parameter_problems(t, name, sample):
            problems.append(f"{name}: accepts the placeholder {sample!r}")
        if parameter_problems(t, name, sample.replace(PLACEHOLDER, "example")):
            problems.append(f"{name}: refuses the filled-in {sample.replace(PLACEHOLDER, 'example')!r}")
        if PLACEHOLDER not in spec.get("ConstraintDescription", ""):
            problems.append(f"{name}: the refusal message does not mention the {PLACEHOLDER} placeholder")
    return problems


def check_dlq_alarms(t):
    """The DLQ pages on every arrival (not only the first) and when its oldest event waits too long."""
    problems = []
    dlq = {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]}
    retention = props(t["Resources"].get("EventsDeadLetterQueue", {})).get("MessageRetentionPeriod", 345600)
    age = arrivals = False
    for name, alarm in of_type(t, "AWS::CloudWatch::Alarm").items():
        p = props(alarm)
        metrics = alarm_metrics(alarm)
        on_dlq = [m for ns, m, d, _ in metrics if ns == "AWS/SQS" and d.get("QueueName") == dlq]
        if on_dlq == ["ApproximateAgeOfOldestMessage"]:
            if p.get("Threshold", retention) < retention / 2:
                age = True
            else:
                problems.append(f"{name}: fires only when the oldest DLQ event is about to expire")
        if on_dlq == ["ApproximateNumberOfMessagesVisible"] and "Metrics" in p:
            if any("DIFF(" in m.get("Expression", "") for m in p["Metrics"]) and p.get("Threshold") == 0 \
                    and p.get("EvaluationPeriods") == 1:
                arrivals = True
        if "NumberOfMessagesSent" in on_dlq:
            problems.append(f"{name}: NumberOfMessagesSent does not count messages SQS redrives to a DLQ")
    if not age:
        problems.append("no alarm on the age of the DLQ's oldest message")
    if not arrivals:
        problems.append("no alarm on messages arriving in the DLQ (growth of its visible count)")
    return problems


def check_reserved_concurrency(t):
    """The HTTP functions reserve concurrency from parameters (0 = none, not 'throttle everything'),
    and the public /health is throttled below the other routes."""
    problems = []
    for fn, param, condition in (("WebhookFunction", "WebhookReservedConcurrency", "HasWebhookReservedConcurrency"),
                                 ("ApiFunction", "ApiReservedConcurrency", "HasApiReservedConcurrency")):
        value = props(t["Resources"].get(fn, {})).get("ReservedConcurrentExecutions")
        if value != {"Fn::If": [condition, {"Ref": param}, {"Ref": "AWS::NoValue"}]}:
            problems.append(f"{fn}: ReservedConcurrentExecutions is not {param} under {condition}")
        if t.get("Conditions", {}).get(condition) != {"Fn::Not": [{"Fn::Equals": [{"Ref": param}, "0"]}]}:
            problems.append(f"{condition}: is not {param} != 0")
        spec = t.get("Parameters", {}).get(param, {})
        if spec.get("Type") != "Number" or not spec.get("Default") or spec.get("MinValue") != 0:
            problems.append(f"{param}: not a Number with a non-zero default and 0 allowed")
    api = props(t["Resources"].get("HttpApi", {}))
    health = api.get("RouteSettings", {}).get("GET /health", {})
    default = api.get("DefaultRouteSettings", {})
    if not health or health.get("ThrottlingRateLimit", 1e9) >= default.get("ThrottlingRateLimit", 0) \
            or health.get("ThrottlingBurstLimit", 1e9) >= default.get("ThrottlingBurstLimit", 0):
        problems.append("HttpApi: GET /health is not throttled below the other routes")
    return problems


def secret_readers(t):
    """{secret: {reading function role}} from FUNCTION_DATA_ACTIONS."""
    readers = {}
    for fn, actions in FUNCTION_DATA_ACTIONS.items():
        for action, resource in actions:
            if action == "secretsmanager:GetSecretValue":
                readers.setdefault(resource, set()).add(target(function_property(t, fn, "Role")))
    return readers


def reader_arn(t, role):
    """How a resource policy names a reading role: its ARN, under the role's condition if it has one."""
    arn = {"Fn::GetAtt": [role, "Arn"]}
    condition = t["Resources"].get(role, {}).get("Condition")
    return {"Fn::If": [condition, arn, {"Ref": "AWS::NoValue"}]} if condition else arn


def check_secret_resource_policies(t):
    """Each secret's value is readable only by the roles that read it, the admin role parameter and
    the account root; writing it (put-secret-value after deploy) stays with IAM."""
    problems = []
    root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    admin = {"Fn::If": ["HasSecretsAdminRole", {"Ref": "SecretsAdminRoleArn"}, {"Ref": "AWS::NoValue"}]}
    policies = {target(props(p).get("SecretId")): props(p)
                for p in of_type(t, "AWS::SecretsManager::ResourcePolicy").values()}
    readers = secret_readers(t)
    for name in of_type(t, "AWS::SecretsManager::Secret"):
        policy = policies.get(name)
        if policy is None:
            problems.append(f"{name}: no resource policy (any principal with IAM access reads it)")
            continue
        if policy.get("BlockPublicPolicy") is not True:
            problems.append(f"{name}: BlockPublicPolicy is not true")
        expected = sorted(map(json.dumps, [reader_arn(t, r) for r in readers.get(name, ())] + [root, admin]))
        guarded = False
        for stmt in policy.get("ResourcePolicy", {}).get("Statement", []):
            actions = as_list(stmt.get("Action", []))
            if stmt.get("Effect") != "Deny":
                problems.append(f"{name}: resource policy allows {actions}")
                continue
            if any(a in ("*", "secretsmanager:*", "secretsmanager:PutSecretValue") for a in actions):
                problems.append(f"{name}: denies {actions}: whoever deploys could not put the value")
            if stmt.get("Principal") == "*" and actions == ["secretsmanager:GetSecretValue"]:
                admitted = stmt.get("Condition", {}).get("ArnNotEquals", {}).get("aws:PrincipalArn", [])
                if sorted(map(json.dumps, as_list(admitted))) == expected:
                    guarded = True
                else:
                    problems.append(f"{name}: GetSecretValue admitted for {admitted}, expected {expected}")
        if not guarded:
            problems.append(f"{name}: GetSecretValue is not denied to every principal but its readers")
    return problems


def check_codedeploy_role(t):
    """CodeDeploy runs with the template's scoped role: the three live aliases, this stack's alarms,
    the hook; SAM's account-wide default role is not created."""
    problems = []
    for fn in DEPLOYED_FUNCTIONS:
        pref = props(t["Resources"][fn]).get("DeploymentPreference") or {}
        if pref.get("Role") != {"Fn::GetAtt": ["CodeDeployRole", "Arn"]}:
            problems.append(f"{fn}: DeploymentPreference without the scoped CodeDeployRole")
    expanded = expand(t)
    if "CodeDeployServiceRole" in expanded["Resources"]:
        problems.append("SAM creates its CodeDeployServiceRole (AWSCodeDeployRoleForLambda on every function)")
    role = props(t["Resources"].get("CodeDeployRole", {}))
    if role.get("AssumeRolePolicyDocument", {}).get("Statement", [{}])[0].get("Principal") != {
            "Service": "codedeploy.amazonaws.com"}:
        problems.append("CodeDeployRole: not assumed by codedeploy.amazonaws.com")
    aliases = [{"Fn::Sub": "${%s.Arn}:live" % fn} for fn in DEPLOYED_FUNCTIONS]
    allowed = {
        "lambda:GetAlias": aliases, "lambda:UpdateAlias": aliases, "lambda:GetProvisionedConcurrencyConfig": aliases,
        "cloudwatch:DescribeAlarms": [{"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}"
                                                 ":alarm:${AWS::StackName}-*"}],
        "lambda:InvokeFunction": [{"Fn::GetAtt": [HOOK, "Arn"]}],
    }
    granted = set()
    for where, stmt in iam_statements(expanded):
        if where != "CodeDeployRole" or stmt.get("Effect") != "Allow":
            continue
        for action in as_list(stmt.get("Action", [])):
            resources = as_list(stmt.get("Resource", []))
            if action not in allowed or any(r not in allowed[action] for r in resources):
                problems.append(f"CodeDeployRole: may {action} on {resources}")
            granted.add(action)
    for action in sorted(set(allowed) - granted):
        problems.append(f"CodeDeployRole: lacks {action}")
    if props(expanded["Resources"].get("CodeDeployRole", {})).get("ManagedPolicyArns"):
        problems.append("CodeDeployRole: carries managed policies")
    return problems


def check_api_writes_only_with_lazy_sync(t):
    """The api may write users and the event log, and read the Clerk key, only with LazySync on."""
    problems = []
    if t.get("Conditions", {}).get("LazySyncOn") != {"Fn::Equals": [{"Ref": "LazySync"}, "true"]}:
        problems.append("LazySyncOn: is not LazySync == true")
    lazy = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "secretsmanager:GetSecretValue"}
    role = props(t["Resources"].get("ApiExecutionRole", {}))
    for policy in role.get("Policies", []):
        for stmt in as_list(policy["PolicyDocument"].get("Statement", [])):
            conditional = isinstance(stmt, dict) and list(stmt) == ["Fn::If"]
            if conditional:
                condition, stmt, otherwise = stmt["Fn::If"]
                if condition != "LazySyncOn" or otherwise != {"Ref": "AWS::NoValue"}:
                    problems.append(f"ApiExecutionRole: statement under {condition}, not LazySyncOn")
                    continue
            actions = set(as_list(stmt.get("Action", [])))
            if actions & lazy and not conditional:
                problems.append(f"ApiExecutionRole: {sorted(actions & lazy)} whatever LazySync says")
    return problems


# What the dashboard must chart from the functions' EMF metrics (namespace ClerkSync), each as a
# fragment of the dashboard body.
DASHBOARD_EMF = {
    "sync lag p50": '["ClerkSync", "SyncLag", "Function", "${SyncFunction}", {"stat": "p50"',
    "sync lag p99": '["...", {"stat": "p99"',
    "sync outcomes": '"MessagesApplied", "Function", "${SyncFunction}"',
    "webhook requests by code": "{ClerkSync,Function,Code} MetricName=\\\"Requests\\\" Function=\\\"${WebhookFunction}\\\"",
    "token refusals by reason": "{ClerkSync,Function,Reason} MetricName=\\\"TokenRefusals\\\"",
    "lazy syncs by outcome": "{ClerkSync,Function,Outcome} MetricName=\\\"LazySyncs\\\"",
    "scheduled reconcile drift": "MetricName=\\\"DriftAbsentFromClerk\\\" Function=\\\"${AWS::StackName}-reconcile\\\"",
}


def check_dashboard(t):
    """The dashboard's alarm widget shows every alarm, and it charts the functions' EMF metrics."""
    body = props(t["Resources"].get("Dashboard", {})).get("DashboardBody", {}).get("Fn::Sub", "")
    # An alarm that exists only under a condition cannot be named by the unconditional dashboard
    # (the reference would fail without it); its metrics are charted instead (DASHBOARD_EMF).
    problems = [f"Dashboard: alarm {name} not shown" for name, alarm in of_type(t, "AWS::CloudWatch::Alarm").items()
                if "Condition" not in alarm and "${%s.Arn}" % name not in body]
    try:
        json.loads(re.sub(r"\$\{[A-Za-z0-9:.]+\}", "x", body))
    except ValueError as e:
        problems.append(f"Dashboard: body is not JSON ({e})")
    problems += [f"Dashboard: no {what}" for what, fragment in DASHBOARD_EMF.items() if fragment not in body]
    return problems


# The scheduled reconcile's resources, all under ReconcileOn.
RECONCILE_RESOURCES = ("ReconcileFunction", "ReconcileLogGroup", "ReconcileExecutionRole",
                       "ReconcileErrorsAlarm", "ReconcileDriftAlarm")


def check_scheduled_reconcile(t):
    """Off by default (no function unless ReconcileSchedule is set), its schedule and budget are
    parameters, it writes only with ReconcileFix, and its errors and drift alarm."""
    problems = []
    params = t.get("Parameters", {})
    if params.get("ReconcileSchedule", {}).get("Default") != "":
        problems.append("ReconcileSchedule: not off (\"\") by default")
    if params.get("ReconcileFix", {}).get("Default") != "false":
        problems.append("ReconcileFix: not false by default")
    if "ReconcileSample" not in params:
        problems.append("ReconcileSample: no per-run budget parameter")
    conditions = t.get("Conditions", {})
    if conditions.get("ReconcileOn") != {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReconcileSchedule"}, ""]}]}:
        problems.append("ReconcileOn: not 'ReconcileSchedule is set'")
    for name in RECONCILE_RESOURCES:
        resource = t["Resources"].get(name)
        if resource is None:
            problems.append(f"{name}: missing")
        elif resource.get("Condition") != "ReconcileOn":
            problems.append(f"{name}: exists without ReconcileSchedule (Condition is not ReconcileOn)")
    fn = props(t["Resources"].get("ReconcileFunction", {}))
    schedules = [e for e in (fn.get("Events") or {}).values() if e.get("Type") == "Schedule"]
    if len(schedules) != 1 or props(schedules[0]).get("Schedule") != {"Ref": "ReconcileSchedule"}:
        problems.append("ReconcileFunction: not exactly one Schedule event on ReconcileSchedule")
    writes = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    role = props(t["Resources"].get("ReconcileExecutionRole", {}))
    for policy in role.get("Policies", []):
        for stmt in as_list(policy["PolicyDocument"].get("Statement", [])):
            conditional = isinstance(stmt, dict) and list(stmt) == ["Fn::If"]
            for branch in if_branches(stmt):
                actions = set(as_list(branch.get("Action", [])))
                if actions & writes and not (conditional and stmt["Fn::If"][0] == "ReconcileFixOn"):
                    problems.append(f"ReconcileExecutionRole: {sorted(actions & writes)} without ReconcileFix")
    for alarm, metric in (("ReconcileErrorsAlarm", "Errors"), ("ReconcileDriftAlarm", "DriftFound")):
        if props(t["Resources"].get(alarm, {})).get("MetricName") != metric:
            problems.append(f"{alarm}: does not watch {metric}")
    return problems


# ---------------------------------------------------------------------------------------------

class TemplateProperties(unittest.TestCase):
    template = None

    @classmethod
    def setUpClass(cls):
        cls.template = load()

    def assertHolds(self, check):
        self.assertEqual([], check(self.template))

    def test_every_table_is_on_demand_with_pitr_cmk_encryption_and_parameterised_deletion_protection(self):
        self.assertHolds(check_tables_on_demand_pitr_cmk)

    def test_the_users_table_survives_stack_deletion_and_replacement(self):
        self.assertHolds(check_users_table_is_retained)

    def test_the_tables_have_the_keys_and_index_the_code_uses(self):
        self.assertHolds(check_table_keys)

    def test_the_event_log_expires_items_through_ttl_on_expires_at(self):
        self.assertHolds(check_event_log_ttl)

    def test_the_events_queue_redrives_to_the_dlq_after_five_receives(self):
        self.assertHolds(check_redrive_to_dlq)

    def test_the_events_queue_visibility_timeout_is_at_least_six_sync_timeouts(self):
        self.assertHolds(check_visibility_timeout_covers_sync_timeout)

    def test_every_queue_secret_topic_and_log_group_is_encrypted_with_the_rotating_cmk(self):
        self.assertHolds(check_everything_at_rest_is_encrypted_with_the_cmk)

    def test_every_queue_denies_requests_without_tls(self):
        self.assertHolds(check_queues_deny_plain_http)

    def test_the_sqs_event_reports_batch_item_failures_and_bounds_concurrency(self):
        self.assertHolds(check_sqs_event_source)

    def test_every_function_logs_json_to_its_own_log_group_with_retention(self):
        self.assertHolds(check_functions_log_to_own_group_with_retention)

    def test_every_function_is_a_cargo_lambda_binary_on_provided_al2023_with_tracing(self):
        self.assertHolds(check_function_runtime)

    def test_every_function_has_exactly_the_documented_environment(self):
        self.assertHolds(check_function_environments)

    def test_no_iam_statement_grants_wildcard_actions_or_data_access_on_any_resource(self):
        self.assertHolds(check_no_wildcard_iam)

    def test_each_function_may_take_exactly_the_documented_data_actions(self):
        self.assertHolds(check_function_data_actions)

    def test_only_the_account_root_gets_kms_wildcards_and_services_use_the_key_under_conditions(self):
        self.assertHolds(check_key_policy)

    def test_http_facing_functions_deploy_through_an_alias_with_a_canary_that_rolls_back_on_alarms(self):
        self.assertHolds(check_http_functions_deploy_gradually)

    def test_every_alarm_notifies_the_alarm_topic_and_decides_missing_data(self):
        self.assertHolds(check_alarms_notify_the_topic)

    def test_each_function_serves_exactly_its_routes_on_the_shared_http_api_without_an_authorizer(self):
        self.assertHolds(check_http_routes)

    def test_every_route_an_alarm_watches_is_served(self):
        self.assertHolds(check_alarm_routes_exist)

    def test_function_roles_use_the_key_only_through_their_services(self):
        self.assertHolds(check_function_kms_via_service)

    def test_the_deploy_is_refused_without_a_clerk_key_source_and_the_pem_is_not_echoed(self):
        self.assertHolds(check_clerk_token_parameters)

    def test_the_http_api_is_throttled_writes_json_access_logs_and_allows_cors_only_for_the_frontends(self):
        self.assertHolds(check_http_api)

    def test_the_outputs_include_the_webhook_url_and_what_operators_need(self):
        self.assertHolds(check_outputs)

    def test_queue_and_secret_names_are_the_ones_the_local_stack_uses(self):
        self.assertHolds(check_shared_names)

    def test_every_environment_deploys_valid_parameters_and_prod_is_protected(self):
        self.assertHolds(check_samconfig_environments)

    def test_every_canary_judges_only_the_new_version_on_its_failure_metrics_within_the_window(self):
        self.assertHolds(check_canary_alarms_judge_the_new_version)

    def test_a_configuration_change_publishes_a_version_like_a_code_change(self):
        self.assertHolds(check_auto_publish_all_properties)

    def test_every_deployment_runs_the_pre_traffic_hook_on_the_new_versions_with_minimal_permissions(self):
        self.assertHolds(check_pre_traffic_hook)

    def test_staging_and_prod_refuse_to_deploy_without_an_alarm_subscriber(self):
        self.assertHolds(check_alarm_subscriber_rule)

    def test_staging_and_prod_refuse_to_deploy_without_issuer_and_authorized_parties(self):
        self.assertHolds(check_staging_and_prod_token_rules)

    def test_a_deploy_that_would_ignore_deletions_is_refused_unless_opted_out(self):
        self.assertHolds(check_deletes_rule)

    def test_every_replace_me_placeholder_is_refused_with_a_message_saying_what_to_do(self):
        self.assertHolds(check_placeholders_refused)

    def test_the_dlq_pages_on_every_arrival_and_on_its_oldest_events_age(self):
        self.assertHolds(check_dlq_alarms)

    def test_the_http_functions_reserve_concurrency_and_health_is_throttled_lower(self):
        self.assertHolds(check_reserved_concurrency)

    def test_only_each_secrets_readers_get_its_value_and_the_deployer_can_still_put_it(self):
        self.assertHolds(check_secret_resource_policies)

    def test_codedeploy_runs_with_a_role_scoped_to_this_stack(self):
        self.assertHolds(check_codedeploy_role)

    def test_the_api_writes_only_when_lazy_sync_is_on(self):
        self.assertHolds(check_api_writes_only_with_lazy_sync)

    def test_the_dashboard_shows_every_alarm_and_the_functions_metrics(self):
        self.assertHolds(check_dashboard)

    def test_the_scheduled_reconcile_is_off_by_default_and_its_schedule_budget_and_writes_are_parameters(self):
        self.assertHolds(check_scheduled_reconcile)


def _set(path, value):
    """A mutation setting template[path...] = value (None deletes)."""
    def mutate(t):
        node = t
        for key in path[:-1]:
            node = node[key]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return mutate


def _add_statement(role, statement):
    def mutate(t):
        t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(statement)
    return mutate


R = "Resources"
P = "Properties"
CORS_ON = [R, "HttpApi", P, "CorsConfiguration", "Fn::If", 1]
# ApiExecutionRole's statements: 2 ReadUsers, 3 lazy sync's users write, 5/6 the Clerk key, 8 its record.
API_STATEMENTS = [R, "ApiExecutionRole", P, "Policies", 0, "PolicyDocument", "Statement"]
HOOK_STATEMENTS = [R, HOOK, P, "Environment", "Variables"]


def _metric_dimension(alarm, index, name, value):
    """A mutation setting dimension `name` of an alarm's `index`-th metric (None drops it)."""
    def mutate(t):
        p = t[R][alarm][P]
        dims = p["Dimensions"] if index is None else p["Metrics"][index]["MetricStat"]["Metric"]["Dimensions"]
        dims[:] = [d for d in dims if d["Name"] != name] + ([{"Name": name, "Value": value}] if value else [])
    return mutate


def _pop(*path):
    def mutate(t):
        node = t
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1])
    return mutate
RECONCILE_STATEMENTS = [R, "ReconcileExecutionRole", P, "Policies", 0, "PolicyDocument", "Statement"]
MUTATIONS = [
    (check_scheduled_reconcile, "the schedule on by default",
     _set([R, "ReconcileFunction", "Condition"], None)),
    (check_scheduled_reconcile, "a fixed schedule",
     _set([R, "ReconcileFunction", P, "Events", "Schedule", P, "Schedule"], "rate(1 day)")),
    (check_scheduled_reconcile, "ReconcileSchedule defaulting to daily",
     _set(["Parameters", "ReconcileSchedule", "Default"], "rate(1 day)")),
    (check_scheduled_reconcile, "repairs on by default", _set(["Parameters", "ReconcileFix", "Default"], "true")),
    (check_scheduled_reconcile, "user writes without ReconcileFix",
     _set(RECONCILE_STATEMENTS + [3], {"Sid": "RepairUsers", "Effect": "Allow", "Action": ["dynamodb:PutItem"],
                                       "Resource": {"Fn::GetAtt": ["UsersTable", "Arn"]}})),
    (check_secret_resource_policies, "the Clerk key's policy not admitting the reconcile",
     _set([R, "ClerkSecretKeyPolicy", P, "ResourcePolicy", "Statement", 0, "Condition", "ArnNotEquals",
           "aws:PrincipalArn", 1], {"Ref": "AWS::NoValue"})),
    (check_http_api, "CORS for any origin", _set(CORS_ON + ["AllowOrigins"], ["*"])),
    (check_http_api, "CORS allowing POST", _set(CORS_ON + ["AllowMethods"], ["GET", "POST"])),
    (check_http_api, "CORS with cookies", _set(CORS_ON + ["AllowCredentials"], True)),
    (check_http_api, "CORS without a condition",
     _set([R, "HttpApi", P, "CorsConfiguration"], {"AllowOrigins": ["https://a.example"]})),
    (check_tables_on_demand_pitr_cmk, "event log without PITR",
     _set([R, "EventLogTable", P, "PointInTimeRecoverySpecification"], None)),
    (check_tables_on_demand_pitr_cmk, "users table on the AWS owned key",
     _set([R, "UsersTable", P, "SSESpecification"], {"SSEEnabled": False})),
    (check_tables_on_demand_pitr_cmk, "provisioned users table",
     _set([R, "UsersTable", P, "BillingMode"], "PROVISIONED")),
    (check_users_table_is_retained, "users table deleted with the stack",
     _set([R, "UsersTable", "DeletionPolicy"], "Delete")),
    (check_table_keys, "by_user sorted by a string",
     _set([R, "EventLogTable", P, "AttributeDefinitions", 2, "AttributeType"], "S")),
    (check_event_log_ttl, "TTL on another attribute",
     _set([R, "EventLogTable", P, "TimeToLiveSpecification", "AttributeName"], "ttl")),
    (check_redrive_to_dlq, "three receives",
     _set([R, "EventsQueue", P, "RedrivePolicy", "maxReceiveCount"], 3)),
    (check_visibility_timeout_covers_sync_timeout, "sync timeout raised to 60 s",
     _set([R, "SyncFunction", P, "Timeout"], 60)),
    (check_everything_at_rest_is_encrypted_with_the_cmk, "DLQ on SQS-managed keys",
     _set([R, "EventsDeadLetterQueue", P, "KmsMasterKeyId"], None)),
    (check_everything_at_rest_is_encrypted_with_the_cmk, "alarm topic unencrypted",
     _set([R, "AlarmTopic", P, "KmsMasterKeyId"], None)),
    (check_everything_at_rest_is_encrypted_with_the_cmk, "secret on the AWS managed key",
     _set([R, "ClerkSecretKey", P, "KmsKeyId"], "alias/aws/secretsmanager")),
    (check_queues_deny_plain_http, "queue policy dropped",
     lambda t: t[R].pop("QueuesPolicy")),
    (check_sqs_event_source, "whole-batch retries",
     _set([R, "SyncFunction", P, "Events", "EventsQueue", P, "FunctionResponseTypes"], None)),
    (check_sqs_event_source, "unbounded consumer",
     _set([R, "SyncFunction", P, "Events", "EventsQueue", P, "ScalingConfig"], None)),
    (check_functions_log_to_own_group_with_retention, "log group kept forever",
     _set([R, "SyncLogGroup", P, "RetentionInDays"], None)),
    (check_functions_log_to_own_group_with_retention, "function on Lambda's implicit log group",
     _set([R, "WebhookFunction", P, "LoggingConfig"], None)),
    (check_functions_log_to_own_group_with_retention, "api logging into the sync log group",
     _set([R, "ApiFunction", P, "LoggingConfig", "LogGroup"], {"Ref": "SyncLogGroup"})),
    (check_functions_log_to_own_group_with_retention, "api logs kept forever",
     _set([R, "ApiLogGroup", P, "RetentionInDays"], None)),
    (check_function_runtime, "wrong binary",
     _set([R, "SyncFunction", "Metadata", "BuildProperties", "Binary"], "webhook")),
    (check_function_runtime, "api built from the webhook binary",
     _set([R, "ApiFunction", "Metadata", "BuildProperties", "Binary"], "webhook")),
    (check_function_environments, "an undocumented variable",
     _set([R, "SyncFunction", P, "Environment", "Variables", "RUST_LOG"], "debug")),
    (check_function_environments, "queue URL pointing at the DLQ",
     _set([R, "WebhookFunction", P, "Environment", "Variables", "EVENTS_QUEUE_URL"],
          {"Ref": "EventsDeadLetterQueue"})),
    (check_function_environments, "api reading the signing secret as the Clerk key",
     _set([R, "ApiFunction", P, "Environment", "Variables", "CLERK_SECRET_KEY_ID"],
          {"Ref": "WebhookSigningSecret"})),
    (check_function_environments, "api lazy sync hard-wired on",
     _set([R, "ApiFunction", P, "Environment", "Variables", "LAZY_SYNC"], "true")),
    (check_function_environments, "api refusing pending sessions whatever the parameter says",
     _set([R, "ApiFunction", P, "Environment", "Variables", "CLERK_REFUSE_PENDING_SESSIONS"], "true")),
    (check_function_environments, "api without its issuer",
     _set([R, "ApiFunction", P, "Environment", "Variables", "CLERK_ISSUER"], None)),
    (check_no_wildcard_iam, "dynamodb:* on the users table",
     _add_statement("SyncExecutionRole", {"Effect": "Allow", "Action": "dynamodb:*",
                                          "Resource": {"Fn::GetAtt": ["UsersTable", "Arn"]}})),
    (check_no_wildcard_iam, "kms:Decrypt on every key",
     _add_statement("WebhookExecutionRole", {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})),
    (check_no_wildcard_iam, "SAM-generated role with AWS managed policies",
     _set([R, "SyncFunction", P, "Role"], None)),
    (check_no_wildcard_iam, "SAM policy template with a wildcard",
     lambda t: (t[R]["WebhookFunction"][P].pop("Role"),
                t[R]["WebhookFunction"][P].update(Policies=[{"Statement": [
                    {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}]))),
    (check_function_data_actions, "sync may delete users",
     _add_statement("SyncExecutionRole", {"Effect": "Allow", "Action": "dynamodb:DeleteItem",
                                          "Resource": {"Fn::GetAtt": ["UsersTable", "Arn"]}})),
    (check_function_data_actions, "api may read the webhook signing secret",
     _set(API_STATEMENTS + [5, "Fn::If", 1, "Resource"], {"Ref": "WebhookSigningSecret"})),
    (check_function_data_actions, "api may scan the users table",
     _set(API_STATEMENTS + [2, "Action"], ["dynamodb:GetItem", "dynamodb:Scan"])),
    (check_function_data_actions, "api without lazy sync's write",
     _set(API_STATEMENTS + [3], {"Ref": "AWS::NoValue"})),
    (check_key_policy, "key usable by any principal",
     lambda t: t[R]["EncryptionKey"][P]["KeyPolicy"]["Statement"].append(
         {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"})),
    (check_key_policy, "logs may use the key for any log group",
     _set([R, "EncryptionKey", P, "KeyPolicy", "Statement", 1, "Condition"], None)),
    (check_http_functions_deploy_gradually, "webhook without canary",
     _set([R, "WebhookFunction", P, "DeploymentPreference"], None)),
    (check_http_functions_deploy_gradually, "canary without alarms",
     _set([R, "WebhookFunction", P, "DeploymentPreference", "Alarms"], [])),
    (check_http_functions_deploy_gradually, "api without canary",
     _set([R, "ApiFunction", P, "AutoPublishAlias"], None)),
    (check_http_functions_deploy_gradually, "api canary blind to crashes",
     _set([R, "ApiFunction", P, "DeploymentPreference", "Alarms"], [{"Ref": "ApiLatencyP99Alarm"}])),
    (check_alarms_notify_the_topic, "a silent alarm",
     _set([R, "DeadLetterQueueNotEmptyAlarm", P, "AlarmActions"], [])),
    (check_http_routes, "webhook on another path",
     _set([R, "WebhookFunction", P, "Events", "ClerkWebhook", P, "Path"], "/clerk")),
    (check_http_routes, "api without /health",
     lambda t: t[R]["ApiFunction"][P]["Events"].pop("Health")),
    (check_http_routes, "api route on a second API",
     _set([R, "ApiFunction", P, "Events", "UsersMe", P, "ApiId"], {"Ref": "OtherApi"})),
    (check_http_routes, "api behind an IAM authorizer",
     _set([R, "ApiFunction", P, "Events", "UserById", P, "Auth"], {"Authorizer": "AWS_IAM"})),
    (check_alarm_routes_exist, "5xx alarm watching a misspelt route",
     _set([R, "Api5xxRateAlarm", P, "Metrics", 1, "MetricStat", "Metric", "Dimensions", 0, "Value"],
          "GET /v1/users/{userId}")),
    (check_alarm_routes_exist, "webhook alarm on a removed route",
     _set([R, "Webhook5xxAlarm", P, "Dimensions", 0, "Value"], "POST /webhooks")),
    (check_function_kms_via_service, "api may use the key directly",
     _set(API_STATEMENTS + [6, "Fn::If", 1, "Condition"], None)),
    (check_function_kms_via_service, "api may decrypt through SQS too",
     _set(API_STATEMENTS + [6, "Fn::If", 1, "Condition", "StringEquals", "kms:ViaService"],
          [{"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"},
           {"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"}])),
    (check_clerk_token_parameters, "deploy allowed without a key source",
     lambda t: t.pop("Rules")),
    (check_clerk_token_parameters, "rule asserting only the JWKS URL",
     _set(["Rules", "ClerkKeySource", "Assertions", 0, "Assert"],
          {"Fn::Not": [{"Fn::Equals": [{"Ref": "ClerkJwksUrl"}, ""]}]})),
    (check_clerk_token_parameters, "PEM echoed",
     _set(["Parameters", "ClerkJwtKey", "NoEcho"], None)),
    (check_clerk_token_parameters, "pending sessions spelt yes/no",
     _set(["Parameters", "ClerkRefusePendingSessions", "AllowedValues"], ["yes", "no"])),
    (check_clerk_token_parameters, "pending sessions refused unless told otherwise",
     _set(["Parameters", "ClerkRefusePendingSessions", "Default"], "true")),
    (check_http_api, "access logs in plain text",
     _set([R, "HttpApi", P, "AccessLogSettings", "Format"], "$context.requestId $context.status")),
    (check_http_api, "no throttling",
     _set([R, "HttpApi", P, "DefaultRouteSettings"], None)),
    (check_outputs, "no webhook URL",
     _set(["Outputs", "WebhookUrl"], None)),
    (check_outputs, "no health URL",
     _set(["Outputs", "ApiHealthUrl"], None)),
    (check_shared_names, "queue renamed",
     _set([R, "EventsQueue", P, "QueueName"], {"Fn::Sub": "${AWS::StackName}-queue"})),
    (check_shared_names, "secret value in the template",
     _set([R, "WebhookSigningSecret", P, "SecretString"], "whsec_abc")),
    (check_canary_alarms_judge_the_new_version, "webhook 5xx rate over every version",
     _metric_dimension("WebhookVersion5xxRateAlarm", 1, "Version", None)),
    (check_canary_alarms_judge_the_new_version, "sync crashes counted over every version",
     _metric_dimension("SyncVersionErrorsAlarm", None, "ExecutedVersion", None)),
    (check_canary_alarms_judge_the_new_version, "api crash alarm on the old version's alias",
     _metric_dimension("ApiVersionErrorsAlarm", None, "Resource", {"Fn::Sub": "${ApiFunction}:previous"})),
    (check_canary_alarms_judge_the_new_version, "sync canary blind to failed items",
     _set([R, "SyncFunction", P, "DeploymentPreference", "Alarms"], [{"Ref": "SyncVersionErrorsAlarm"}])),
    (check_canary_alarms_judge_the_new_version, "webhook canary judged on the old, unscoped alarms",
     _set([R, "WebhookFunction", P, "DeploymentPreference", "Alarms"],
          [{"Ref": "WebhookErrorsAlarm"}, {"Ref": "Webhook5xxAlarm"}, {"Ref": "Webhook4xxRateAlarm"}])),
    (check_canary_alarms_judge_the_new_version, "latency alarm slower than the canary",
     _set([R, "ApiVersionLatencyP99Alarm", P, "EvaluationPeriods"], 5)),
    (check_canary_alarms_judge_the_new_version, "refusal rate without a minimum volume",
     _set([R, "WebhookVersionRefusalRateAlarm", P, "Metrics", 3, "Expression"], "100 * unexplained / requests")),
    (check_canary_alarms_judge_the_new_version, "absent metrics breaching",
     _set([R, "ApiVersion5xxRateAlarm", P, "TreatMissingData"], "breaching")),
    (check_auto_publish_all_properties, "sync configuration changes bypassing the canary",
     _set([R, "SyncFunction", P, "AutoPublishAliasAllProperties"], None)),
    (check_pre_traffic_hook, "api deployed without the hook",
     _set([R, "ApiFunction", P, "DeploymentPreference", "Hooks"], None)),
    (check_pre_traffic_hook, "hook checking the api's unpublished code",
     _set(HOOK_STATEMENTS + ["API_FUNCTION_VERSION"], {"Fn::GetAtt": ["ApiFunction", "Arn"]})),
    (check_pre_traffic_hook, "hook may invoke any function",
     _add_statement("DeployCheckExecutionRole", {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})),
    (check_pre_traffic_hook, "hook may read the users table",
     _add_statement("DeployCheckExecutionRole", {"Effect": "Allow", "Action": "dynamodb:GetItem",
                                                 "Resource": {"Fn::GetAtt": ["UsersTable", "Arn"]}})),
    (check_pre_traffic_hook, "hook unable to report",
     lambda t: t[R]["DeployCheckExecutionRole"][P]["Policies"][0]["PolicyDocument"]["Statement"].pop(3)),
    (check_alarm_subscriber_rule, "subscriber required in prod only",
     _set(["Rules", "AlarmSubscriber", "RuleCondition"], {"Fn::Equals": [{"Ref": "EnvironmentName"}, "prod"]})),
    (check_alarm_subscriber_rule, "subscriber rule dropped", _pop("Rules", "AlarmSubscriber")),
    (check_alarms_notify_the_topic, "an alarm that never reaches the external topic",
     _set([R, "DeadLetterQueueArrivalsAlarm", P, "AlarmActions"], [{"Ref": "AlarmTopic"}])),
    (check_staging_and_prod_token_rules, "prod accepting any issuer",
     lambda t: t["Rules"]["StagingAndProdCheckTokens"]["Assertions"].pop(0)),
    (check_staging_and_prod_token_rules, "authorized parties opted out by default",
     _set(["Parameters", "AllowAnyAuthorizedParty", "Default"], "true")),
    (check_staging_and_prod_token_rules, "token rules for staging only",
     _set(["Rules", "StagingAndProdCheckTokens", "RuleCondition"],
          {"Fn::Equals": [{"Ref": "EnvironmentName"}, "staging"]})),
    (check_deletes_rule, "deletes ignored without a word", _pop("Rules", "DeletesAreApplied")),
    (check_deletes_rule, "event types as free text",
     _set(["Parameters", "SyncedEventTypes", "Type"], "String")),
    (check_deletes_rule, "ignoring deletes on by default",
     _set(["Parameters", "AllowIgnoringDeletes", "Default"], "true")),
    (check_placeholders_refused, "placeholder JWKS URL accepted",
     _set(["Parameters", "ClerkJwksUrl", "AllowedPattern"], "^$|^https://\\S+$")),
    (check_placeholders_refused, "placeholder admin role accepted",
     _set(["Parameters", "SecretsAdminRoleArn", "AllowedPattern"], "^(|arn:aws[a-z-]*:iam::\\d{12}:role/[\\w+=,.@/-]+)$")),
    (check_placeholders_refused, "a new free-text parameter nobody checked",
     _set(["Parameters", "SupportEmail"], {"Type": "String", "Default": ""})),
    (check_dlq_alarms, "no DLQ age alarm", _pop(R, "DeadLetterQueueOldestMessageAgeAlarm")),
    (check_dlq_alarms, "DLQ age alarm after the events expired",
     _set([R, "DeadLetterQueueOldestMessageAgeAlarm", P, "Threshold"], 1209600)),
    (check_dlq_alarms, "DLQ arrivals counted by NumberOfMessagesSent",
     _set([R, "DeadLetterQueueArrivalsAlarm", P, "Metrics", 0, "MetricStat", "Metric", "MetricName"],
          "NumberOfMessagesSent")),
    (check_reserved_concurrency, "unbounded webhook", _set([R, "WebhookFunction", P, "ReservedConcurrentExecutions"], None)),
    (check_reserved_concurrency, "api reservation of 0 throttling every request",
     _set([R, "ApiFunction", P, "ReservedConcurrentExecutions"], {"Ref": "ApiReservedConcurrency"})),
    (check_reserved_concurrency, "/health as open as the user routes", _set([R, "HttpApi", P, "RouteSettings"], None)),
    (check_secret_resource_policies, "Clerk key without a resource policy", _pop(R, "ClerkSecretKeyPolicy")),
    (check_secret_resource_policies, "signing secret readable by the api",
     lambda t: t[R]["WebhookSigningSecretPolicy"][P]["ResourcePolicy"]["Statement"][0]["Condition"]["ArnNotEquals"][
         "aws:PrincipalArn"].append({"Fn::GetAtt": ["ApiExecutionRole", "Arn"]})),
    (check_secret_resource_policies, "deployer locked out of put-secret-value",
     _set([R, "ClerkSecretKeyPolicy", P, "ResourcePolicy", "Statement", 0, "Action"], "secretsmanager:*")),
    (check_codedeploy_role, "SAM's account-wide CodeDeploy role",
     _set([R, "SyncFunction", P, "DeploymentPreference", "Role"], None)),
    (check_codedeploy_role, "CodeDeploy may update any alias",
     _set([R, "CodeDeployRole", P, "Policies", 0, "PolicyDocument", "Statement", 0, "Resource"], "*")),
    (check_no_wildcard_iam, "SAM's CodeDeploy role with its managed policy",
     _set([R, "ApiFunction", P, "DeploymentPreference", "Role"], None)),
    (check_dashboard, "a new alarm missing from the dashboard",
     _set([R, "ExtraAlarm"], {"Type": "AWS::CloudWatch::Alarm", "Properties": {}})),
    (check_dashboard, "dashboard without sync lag percentiles",
     lambda t: t[R]["Dashboard"][P]["DashboardBody"].__setitem__(
         "Fn::Sub", t[R]["Dashboard"][P]["DashboardBody"]["Fn::Sub"].replace('"SyncLag"', '"Lag"'))),
    (check_api_writes_only_with_lazy_sync, "api writes users whatever LazySync says",
     lambda t: t[R]["ApiExecutionRole"][P]["Policies"][0]["PolicyDocument"]["Statement"].__setitem__(
         3, t[R]["ApiExecutionRole"][P]["Policies"][0]["PolicyDocument"]["Statement"][3]["Fn::If"][1])),
    (check_api_writes_only_with_lazy_sync, "api reads the Clerk key under the wrong condition",
     _set(API_STATEMENTS + [5, "Fn::If", 0], "HasAuthorizedParties")),
]


def _deploy(env, key, value):
    """A samconfig mutation setting [env.deploy.parameters] key = value."""
    return lambda config: config[env]["deploy"]["parameters"].__setitem__(key, value)


def _global(env, key, value):
    """A samconfig mutation setting [env.global.parameters] key = value."""
    return lambda config: config[env]["global"]["parameters"].__setitem__(key, value)


def _override(env, name, value):
    """A samconfig mutation setting one parameter override of env (None removes it), the rest kept,
    so each mutation breaks exactly one thing."""
    def mutate(config):
        deploy = config[env]["deploy"]["parameters"]
        pairs = [(k, v) for k, v in re.findall(r'(\w+)="([^"]*)"', deploy["parameter_overrides"]) if k != name]
        if value is not None:
            pairs.append((name, value))
        deploy["parameter_overrides"] = " ".join(f'{k}="{v}"' for k, v in pairs)
    return mutate


SAMCONFIG_MUTATIONS = [
    ("prod without change-set confirmation", _deploy("prod", "confirm_changeset", False)),
    ("a log retention CloudWatch refuses", _override("staging", "LogRetentionDays", "15")),
    ("a misspelt parameter", _override("dev", "SyncMaxConcurency", "2")),
    ("consumer concurrency below Lambda's minimum", _override("dev", "SyncMaxConcurrency", "1")),
    ("prod tables unprotected", _override("prod", "DeletionProtection", "false")),
    ("staging deploying over prod", _global("staging", "stack_name", "clerk-sync-prod")),
    ("a stack name only sam deploy reads", _deploy("dev", "stack_name", "clerk-sync-dev")),
    ("dev without a Clerk key source", _override("dev", "ClerkJwksUrl", None)),
    ("prod accepting any issuer", _override("prod", "ClerkIssuer", None)),
    ("staging accepting tokens minted for any site", _override("staging", "ClerkAuthorizedParties", "")),
    ("a JWKS URL over plain HTTP", _override("prod", "ClerkJwksUrl", "http://clerk.example.com/.well-known/jwks.json")),
    ("lazy sync spelt on", _override("staging", "LazySync", "on")),
    ("refusing pending sessions spelt on", _override("prod", "ClerkRefusePendingSessions", "on")),
    ("an admin claim without a value", _override("prod", "ClerkAdminClaim", "metadata.role")),
    ("prod without an alarm subscriber", _override("prod", "AlarmEmail", None)),
    ("staging shifting all traffic at once", _override("staging", "DeploymentStrategy", "AllAtOnce")),
    ("an event type list with a typo", _override("dev", "SyncedEventTypes", "user.created,user.delete")),
]


class EachCheckCanFail(unittest.TestCase):
    def test_every_check_reports_a_template_that_breaks_its_property(self):
        template = load()
        for check, description, mutate in MUTATIONS:
            with self.subTest(check=check.__name__, mutation=description):
                broken = copy.deepcopy(template)
                mutate(broken)
                self.assertNotEqual([], check(broken), f"{check.__name__} missed: {description}")

    def test_the_samconfig_check_reports_each_broken_environment(self):
        template, config = load(), load_samconfig()
        self.assertEqual([], check_samconfig_environments(template, config), "baseline must hold")
        for description, mutate in SAMCONFIG_MUTATIONS:
            with self.subTest(mutation=description):
                broken = copy.deepcopy(config)
                mutate(broken)
                self.assertNotEqual([], check_samconfig_environments(template, broken), description)

    def test_every_check_has_a_mutation_that_breaks_it(self):
        checks = {name for name, f in globals().items() if name.startswith("check_") and callable(f)}
        mutated = {check.__name__ for check, _, _ in MUTATIONS} | {check_samconfig_environments.__name__}
        self.assertEqual(set(), checks - mutated)


if __name__ == "__main__":
    unittest.main()
