"""The Python peers of `make bench-peers`: svix's Webhook.verify (+ json.loads, as svix 2.x
returns nothing) and PyJWT's jwt.decode (RS256, with cryptography) on the inputs file the Rust side
wrote. Prints {"results": [...]} on stdout; nothing else there.

Usage: python bench.py <inputs.json>
"""

import json
import sys
import time
from importlib.metadata import version

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from svix.webhooks import Webhook


def measure(plan, iterations, op):
    """Rounds of `iterations` calls after the plan's warm-up rounds: each round's µs per call."""
    for _ in range(plan["warmup_rounds"] * iterations):
        op()
    rounds = []
    for _ in range(plan["rounds"]):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            op()
        rounds.append((time.perf_counter_ns() - start) / 1000 / iterations)
    return rounds


def runtime(*packages):
    python = "python " + ".".join(map(str, sys.version_info[:3]))
    return ", ".join([python] + [f"{p} {version(p)}" for p in packages])


def main(path):
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    plan, webhook, token = spec["plan"], spec["inputs"]["webhook"], spec["inputs"]["token"]
    results = []

    wh = Webhook(webhook["secret"])
    headers = {
        "svix-id": webhook["svix_id"],
        "svix-timestamp": str(webhook["svix_timestamp"]),
        "svix-signature": webhook["svix_signature"],
    }
    body = webhook["body"]

    def verify_webhook():
        verified = wh.verify(body, headers)
        event = verified if verified is not None else json.loads(body)
        return event["type"] == "user.updated"

    if not verify_webhook():
        raise SystemExit("svix refused the benchmark delivery")
    results.append(
        {
            "group": "webhook",
            "name": "svix: Webhook.verify + json.loads",
            "runtime": runtime("svix"),
            "rounds_us": measure(plan, plan["webhook_iterations"], verify_webhook),
        }
    )

    # The key parsed once, as a long-lived process would; the same checks as ours where PyJWT
    # has them (signature, alg, iss, exp/nbf/iat with leeway, required claims), azp by hand.
    key = load_pem_public_key(token["public_pem"].encode())
    options = {"require": ["exp", "nbf", "iat", "sub", "iss"], "verify_aud": False}

    def verify_token():
        claims = jwt.decode(
            token["token"],
            key,
            algorithms=["RS256"],
            issuer=token["issuer"],
            leeway=token["leeway_seconds"],
            options=options,
        )
        return (
            claims.get("azp") == token["authorized_party"]
            and claims.get("sts") != "pending"
            and claims["sub"] == token["user_id"]
            and (claims.get("o") or {}).get("rol") == "admin"
        )

    if not verify_token():
        raise SystemExit("PyJWT refused the benchmark token")
    results.append(
        {
            "group": "token",
            "name": "PyJWT: jwt.decode RS256 (key loaded once) + azp",
            "runtime": runtime("PyJWT", "cryptography"),
            "rounds_us": measure(plan, plan["token_iterations"], verify_token),
        }
    )

    json.dump({"results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python bench.py <inputs.json>")
    main(sys.argv[1])
