#!/usr/bin/env python3
"""`make deploy ENV=…` and `make destroy ENV=…`: a guided first deploy, and a teardown that says
what it keeps.

deploy:
  1. The environment's Clerk values (issuer, authorized parties, JWKS URL or PEM key, alarm email)
     come from `.deploy/<env>.json` (untracked, mode 600); on first use they are asked for and kept
     there. Placeholders (`REPLACE-ME`) and missing required values are refused before anything runs.
  2. `make build` (sam build with the glibc and zip-size checks).
  3. `sam deploy --config-env <env>` with samconfig.toml's parameter_overrides for the environment,
     the kept values in place of its placeholders.
  4. The webhook signing secret (and the Clerk secret key when lazy sync is on) are asked for
     without echo and stored with `aws secretsmanager put-secret-value --secret-string
     file:///dev/stdin`: never on a command line. Enter keeps the stored value.
  The webhook URL and the Clerk dashboard steps are printed before the signing secret is asked
     for, so the endpoint can be created first. Then `make smoke ENV=<env>`.

destroy: `sam delete` after the stack name is typed back; then what is retained (the users table
and the KMS key) and how to delete it.

Commands are taken from the environment for tests: SAM, AWS, MAKE (defaults sam, aws, make), and
DEPLOY_STATE_DIR moves `.deploy/`.
"""

import getpass
import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = "REPLACE-ME"
SAM = os.environ.get("SAM", "sam")
AWS = os.environ.get("AWS", "aws")
MAKE = os.environ.get("MAKE", "make")

# What is asked on first use: (parameter, question, required in staging/prod, required everywhere).
QUESTIONS = [
    ("ClerkIssuer", "Clerk Frontend API URL (issuer), e.g. https://clerk.example.com", True, True),
    ("ClerkAuthorizedParties", "your front end's origins, comma-separated (authorized parties)", True, False),
    ("ClerkJwksUrl", "JWKS URL (Enter for <issuer>/.well-known/jwks.json)", False, False),
    ("AlarmEmail", "email address that receives the alarms", True, False),
]


class Refused(Exception):
    """A value that would deploy something unsafe or broken: nothing has run."""


def say(line=""):
    print(line, flush=True)


def ask(question, secret=False):
    """One answer from the terminal (or stdin when there is none)."""
    if secret:
        if sys.stdin.isatty():
            return getpass.getpass(f"{question}: ").strip()
        print(f"{question}: ", end="", flush=True)
    elif sys.stdin.isatty():
        return input(f"{question}: ").strip()
    else:
        print(f"{question}: ", end="", flush=True)
    line = sys.stdin.readline()
    if not line:
        raise Refused(f"no answer to: {question}")
    return line.strip()


def samconfig():
    with open(ROOT / "samconfig.toml", "rb") as f:
        return tomllib.load(f)


def overrides(env):
    """The environment's parameter_overrides from samconfig.toml, in order."""
    config = samconfig()
    if env not in config or env == "version":
        known = ", ".join(k for k in config if k not in ("version", "default"))
        raise Refused(f"no environment {env!r} in samconfig.toml (known: {known})")
    text = config[env]["deploy"]["parameters"]["parameter_overrides"]
    pairs = [item.split("=", 1) for item in shlex.split(text)]
    return {k: v for k, v in pairs}


def state_file(env):
    return Path(os.environ.get("DEPLOY_STATE_DIR", ROOT / ".deploy")) / f"{env}.json"


def shown(path):
    """`path` as the user knows it: relative to the repository when inside it."""
    try:
        return path.relative_to(ROOT)
    except ValueError:
        return path


def load_or_ask(env):
    """The kept Clerk values, asked for (and kept) on first use."""
    path = state_file(env)
    if path.exists():
        return json.loads(path.read_text())
    say(f"First deploy of {env}: the Clerk values are kept in {shown(path)} (not committed).")
    values = {}
    strict = env in ("staging", "prod")
    for name, question, required_strict, required in QUESTIONS:
        answer = ask(question)
        if name == "ClerkJwksUrl" and not answer and values.get("ClerkIssuer"):
            answer = values["ClerkIssuer"].rstrip("/") + "/.well-known/jwks.json"
        if not answer and (required or (strict and required_strict)):
            raise Refused(f"{name} is required for {env}")
        if answer:
            values[name] = answer
    check(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(values, indent=2) + "\n")
    return values


def check(values):
    for name, value in values.items():
        if PLACEHOLDER in value:
            raise Refused(f"{name} still holds the {PLACEHOLDER} placeholder: {value}")


def parameters(env, kept):
    """samconfig's overrides with the kept values in place; no placeholder may remain."""
    merged = overrides(env)
    merged.update(kept)
    for name, value in merged.items():
        if PLACEHOLDER in value:
            raise Refused(
                f"{name} is still {value!r}: answer it in {shown(state_file(env))} "
                f"or set it in samconfig.toml's [{env}.deploy.parameters]"
            )
    return merged


def run(*command, stdin=None, capture=False):
    result = subprocess.run(
        command,
        cwd=ROOT,
        input=stdin,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    if result.returncode != 0:
        raise SystemExit(f"deploy: `{' '.join(command[:3])} …` failed (exit {result.returncode})")
    return result.stdout


def outputs(env):
    text = run(SAM, "list", "stack-outputs", "--config-env", env, "--output", "json", capture=True)
    return {o["OutputKey"]: o["OutputValue"] for o in json.loads(text)}


def put_secret(arn, value):
    # The value goes through stdin: never on a command line (ps, shell history, CloudTrail args).
    run(AWS, "secretsmanager", "put-secret-value", "--secret-id", arn,
        "--secret-string", "file:///dev/stdin", stdin=value)


def deploy(env):
    overrides(env)  # an unknown environment is refused before any question
    kept = load_or_ask(env)
    params = parameters(env, kept)
    say(f"deploy: building ({MAKE} build: sam build, glibc and zip-size checks)")
    run(MAKE, "build")
    say(f"deploy: sam deploy --config-env {env}")
    # A re-run only to set the secrets changes nothing in the stack: not a failure.
    run(SAM, "deploy", "--config-env", env, "--no-fail-on-empty-changeset",
        "--parameter-overrides", *[f"{k}={v}" for k, v in params.items()])
    out = outputs(env)
    say()
    say(f"Webhook URL: {out['WebhookUrl']}")
    say("In the Clerk dashboard: Configure → Webhooks → Add Endpoint → that URL; subscribe to")
    say("user.created, user.updated and user.deleted; create; then copy its Signing Secret here.")
    say(f"API base: {out['ApiBaseUrl']}")
    say()
    secret = ask("Clerk webhook Signing Secret (whsec_…; Enter keeps the stored one)", secret=True)
    if secret:
        if not secret.startswith("whsec_"):
            raise Refused("a webhook signing secret starts with whsec_")
        put_secret(out["WebhookSecretArn"], secret)
    if params.get("LazySync", "true") == "true":
        key = ask("Clerk secret key for lazy sync (sk_…; Enter keeps the stored one)", secret=True)
        if key:
            if not key.startswith("sk_"):
                raise Refused("a Clerk secret key starts with sk_")
            put_secret(out["ClerkSecretKeyArn"], key)
    say(f"To change a secret later, run `make deploy ENV={env}` again (nothing else changes).")
    run(MAKE, "smoke", f"ENV={env}")


def destroy(env):
    overrides(env)
    name = samconfig()[env]["global"]["parameters"]["stack_name"]
    typed = ask(f"This deletes the stack {name}. Type its name to go on")
    if typed != name:
        raise Refused("not confirmed: nothing deleted")
    run(SAM, "delete", "--config-env", env, "--no-prompts")
    say(f"Deleted {name}. Kept on purpose (DeletionPolicy Retain), and billed until you delete them:")
    say(f"  the users table {name}-users (delete protection first if on):")
    say(f"    aws dynamodb update-table --table-name {name}-users --no-deletion-protection-enabled")
    say(f"    aws dynamodb delete-table --table-name {name}-users")
    say("  the KMS key that encrypts it (the table is unreadable without it): find it with")
    say(f"    aws kms list-aliases --query \"Aliases[?starts_with(AliasName, 'alias/{name}')]\"")
    say("    aws kms schedule-key-deletion --key-id <key id> --pending-window-in-days 30")


def main(argv):
    if len(argv) != 3 or argv[1] not in ("deploy", "destroy"):
        print("usage: deploy.py deploy|destroy ENV  (make deploy ENV=dev)", file=sys.stderr)
        return 2
    try:
        (deploy if argv[1] == "deploy" else destroy)(argv[2])
    except Refused as e:
        print(f"deploy: refused: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndeploy: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
