"""`make deploy` / `make destroy` (scripts/deploy.py) against stub `sam`, `aws` and `make` that
record their arguments: the prompts, the untracked per-environment file, the refusal of
placeholders, the exact sam invocations, and secrets that never reach a command line."""

import json
import os
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy.py"

STUB = """#!/usr/bin/env python3
import json, os, sys
# Only the secret upload reads stdin; the rest (sam deploy's change-set prompt) share the terminal.
stdin = sys.stdin.read() if "file:///dev/stdin" in sys.argv else ""
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({"cmd": os.path.basename(sys.argv[0]), "args": sys.argv[1:], "stdin": stdin}) + "\\n")
if sys.argv[1:3] == ["list", "stack-outputs"]:
    print(json.dumps([{"OutputKey": k, "OutputValue": v} for k, v in {
        "WebhookUrl": "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/clerk",
        "ApiBaseUrl": "https://abc.execute-api.us-east-1.amazonaws.com",
        "WebhookSecretArn": "arn:aws:secretsmanager:us-east-1:1:secret:w",
        "ClerkSecretKeyArn": "arn:aws:secretsmanager:us-east-1:1:secret:c",
    }.items()]))
"""

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CLERK_KEY = "sk_test_stubbedKey1234567890"


class DeployScript(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        base = Path(self.dir.name)
        self.bin = base / "bin"
        self.bin.mkdir()
        for name in ("sam", "aws", "make"):
            path = self.bin / name
            path.write_text(STUB)
            path.chmod(path.stat().st_mode | stat.S_IEXEC)
        self.log = base / "calls.jsonl"
        self.state = base / "state"

    def run_script(self, *args, answers):
        env = dict(os.environ)
        env.update({
            "PATH": f"{self.bin}:{env['PATH']}",
            "STUB_LOG": str(self.log),
            "DEPLOY_STATE_DIR": str(self.state),
            "SAM": "sam", "AWS": "aws", "MAKE": "make",
        })
        return subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            input="".join(a + "\n" for a in answers),
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
        )

    def calls(self):
        if not self.log.exists():
            return []
        return [json.loads(l) for l in self.log.read_text().splitlines()]

    def test_a_first_deploy_asks_keeps_the_answers_untracked_builds_deploys_and_sets_secrets_through_stdin(self):
        answers = ["https://clerk.example.com", "https://app.example.com", "", "oncall@example.com",
                   WEBHOOK_SECRET, CLERK_KEY]
        result = self.run_script("deploy", "prod", answers=answers)
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        kept = json.loads((self.state / "prod.json").read_text())
        self.assertEqual(kept["ClerkIssuer"], "https://clerk.example.com")
        self.assertEqual(kept["ClerkJwksUrl"], "https://clerk.example.com/.well-known/jwks.json")
        self.assertEqual(stat.S_IMODE((self.state / "prod.json").stat().st_mode), 0o600)
        calls = self.calls()
        self.assertEqual([c["cmd"] for c in calls], ["make", "sam", "sam", "aws", "aws", "make"])
        self.assertEqual(calls[0]["args"], ["build"])
        deploy = calls[1]["args"]
        self.assertEqual(deploy[:5], ["deploy", "--config-env", "prod", "--no-fail-on-empty-changeset",
                                      "--parameter-overrides"])
        overrides = dict(a.split("=", 1) for a in deploy[5:])
        self.assertEqual(overrides["ClerkIssuer"], "https://clerk.example.com")
        self.assertEqual(overrides["AlarmEmail"], "oncall@example.com")
        self.assertEqual(overrides["DeploymentStrategy"], "Canary10Percent10Minutes", "samconfig's own")
        self.assertFalse(any("REPLACE-ME" in v for v in overrides.values()))
        puts = [c for c in calls if c["cmd"] == "aws"]
        self.assertEqual([p["stdin"] for p in puts], [WEBHOOK_SECRET, CLERK_KEY])
        for put in puts:
            self.assertIn("file:///dev/stdin", put["args"])
        for call in calls:
            for secret in (WEBHOOK_SECRET, CLERK_KEY):
                self.assertNotIn(secret, " ".join(call["args"]), "a secret on a command line")
        self.assertEqual(calls[-1]["args"], ["smoke", "ENV=prod"])
        self.assertIn("https://abc.execute-api.us-east-1.amazonaws.com/webhooks/clerk", result.stdout)
        self.assertIn("Configure → Webhooks → Add Endpoint", result.stdout)
        # The URL is shown before the signing secret is asked for (the endpoint comes first).
        self.assertLess(result.stdout.index("Webhook URL:"), result.stdout.index("Clerk webhook Signing Secret"))

    def test_a_second_deploy_asks_nothing_but_the_secrets_and_enter_keeps_them(self):
        self.state.mkdir()
        (self.state / "dev.json").write_text(json.dumps({
            "ClerkIssuer": "https://x.clerk.accounts.dev",
            "ClerkJwksUrl": "https://x.clerk.accounts.dev/.well-known/jwks.json",
            "ClerkAuthorizedParties": "http://localhost:5173"}))
        result = self.run_script("deploy", "dev", answers=["", ""])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([c["cmd"] for c in self.calls()], ["make", "sam", "sam", "make"])

    def test_a_placeholder_answer_is_refused_before_anything_runs_and_nothing_is_kept(self):
        answers = ["https://clerk.REPLACE-ME.example", "https://app.example.com", "", "a@example.com"]
        result = self.run_script("deploy", "staging", answers=answers)
        self.assertEqual(result.returncode, 1)
        self.assertIn("REPLACE-ME", result.stderr)
        self.assertEqual(self.calls(), [])
        self.assertFalse((self.state / "staging.json").exists())

    def test_staging_without_an_alarm_email_is_refused(self):
        result = self.run_script("deploy", "staging", answers=["https://c.example.com", "https://a.example.com", "", ""])
        self.assertEqual(result.returncode, 1)
        self.assertIn("AlarmEmail is required", result.stderr)
        self.assertEqual(self.calls(), [])

    def test_a_samconfig_placeholder_left_unanswered_is_refused_with_the_file_to_edit(self):
        self.state.mkdir()
        (self.state / "prod.json").write_text(json.dumps({"ClerkIssuer": "https://clerk.example.com"}))
        result = self.run_script("deploy", "prod", answers=[])
        self.assertEqual(result.returncode, 1)
        self.assertIn("prod.json", result.stderr)
        self.assertIn("samconfig.toml", result.stderr)
        self.assertEqual(self.calls(), [])

    def test_a_webhook_secret_that_is_not_whsec_is_refused_and_not_stored(self):
        self.state.mkdir()
        (self.state / "dev.json").write_text(json.dumps({
            "ClerkIssuer": "https://x.clerk.accounts.dev",
            "ClerkJwksUrl": "https://x.clerk.accounts.dev/.well-known/jwks.json",
            "ClerkAuthorizedParties": "http://localhost:5173"}))
        result = self.run_script("deploy", "dev", answers=["not-a-secret"])
        self.assertEqual(result.returncode, 1)
        self.assertNotIn("aws", [c["cmd"] for c in self.calls()])

    def test_destroy_deletes_only_after_the_stack_name_is_typed_and_says_what_is_kept(self):
        refused = self.run_script("destroy", "dev", answers=["yes"])
        self.assertEqual(refused.returncode, 1)
        self.assertEqual(self.calls(), [])
        done = self.run_script("destroy", "dev", answers=["clerk-sync-dev"])
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.calls()[0]["args"], ["delete", "--config-env", "dev", "--no-prompts"])
        self.assertIn("clerk-sync-dev-users", done.stdout)
        self.assertIn("schedule-key-deletion", done.stdout)

    def test_an_unknown_environment_is_refused(self):
        result = self.run_script("deploy", "qa", answers=[])
        self.assertEqual(result.returncode, 1)
        self.assertIn("no environment 'qa'", result.stderr)


if __name__ == "__main__":
    unittest.main()
