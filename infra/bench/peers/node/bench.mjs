// The Node peers of `make bench-peers`: svix's Webhook.verify (which returns the parsed body),
// @clerk/backend's networkless verifyToken (jwtKey) and jose's jwtVerify with an imported key, on
// the inputs file the Rust side wrote. Prints {"results": [...]} on stdout; nothing else there.
//
// Usage: node bench.mjs <inputs.json>
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";

import { verifyToken } from "@clerk/backend";
import { importSPKI, jwtVerify } from "jose";
import { Webhook } from "svix";

const require = createRequire(import.meta.url);
const version = (pkg) => require(`${pkg}/package.json`).version;

const file = process.argv[2];
if (!file) {
  console.error("usage: node bench.mjs <inputs.json>");
  process.exit(2);
}
const { plan, inputs } = JSON.parse(readFileSync(file, "utf8"));
const { webhook, token } = inputs;

// Rounds of `iterations` calls after `plan.warmup_rounds` untimed ones, each round's time per
// call in microseconds. Awaiting a promise per call is part of the async verifiers' cost.
async function measure(iterations, op) {
  for (let i = 0; i < plan.warmup_rounds * iterations; i++) await op();
  const rounds = [];
  for (let r = 0; r < plan.rounds; r++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) await op();
    rounds.push(((performance.now() - start) * 1000) / iterations);
  }
  return rounds;
}

function measureSync(iterations, op) {
  let sink = 0;
  for (let i = 0; i < plan.warmup_rounds * iterations; i++) sink ^= op() ? 1 : 0;
  const rounds = [];
  for (let r = 0; r < plan.rounds; r++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) sink ^= op() ? 1 : 0;
    rounds.push(((performance.now() - start) * 1000) / iterations);
  }
  if (sink === 2) console.error(sink); // keeps the results observable
  return rounds;
}

const runtime = (pkg) => `node ${process.version}, ${pkg} ${version(pkg)}`;
const results = [];

// Webhook: verify the signature and timestamp, and parse the body (svix 1.x returns the parsed
// body; a version returning nothing gets an explicit JSON.parse).
{
  const wh = new Webhook(webhook.secret);
  const headers = {
    "svix-id": webhook.svix_id,
    "svix-timestamp": String(webhook.svix_timestamp),
    "svix-signature": webhook.svix_signature,
  };
  const op = () => {
    const verified = wh.verify(webhook.body, headers);
    const event = verified ?? JSON.parse(webhook.body);
    return event.type === "user.updated";
  };
  if (!op()) throw new Error("svix refused the benchmark delivery");
  results.push({
    group: "webhook",
    name: "svix: Webhook.verify (+ parsed body)",
    runtime: runtime("svix"),
    rounds_us: measureSync(plan.webhook_iterations, op),
  });
}

// Token, @clerk/backend: what a Clerk Node backend calls; with jwtKey it makes no network call,
// but imports the key into WebCrypto on every call.
{
  const options = {
    jwtKey: token.public_pem,
    authorizedParties: [token.authorized_party],
    issuer: token.issuer,
    clockSkewInMs: token.leeway_seconds * 1000,
  };
  const op = async () => {
    const claims = await verifyToken(token.token, options);
    return claims.sub === token.user_id && claims.o?.rol === "admin";
  };
  if (!(await op())) throw new Error("@clerk/backend refused the benchmark token");
  results.push({
    group: "token",
    name: "@clerk/backend: verifyToken (jwtKey, networkless)",
    runtime: runtime("@clerk/backend"),
    rounds_us: await measure(plan.token_iterations, op),
  });
}

// Token, jose: the key imported once, then signature, alg, iss, exp/nbf/iat; azp and the admin
// claim checked by hand as a caller would.
{
  const key = await importSPKI(token.public_pem, "RS256");
  const options = {
    algorithms: ["RS256"],
    issuer: token.issuer,
    typ: "JWT",
    clockTolerance: token.leeway_seconds,
    requiredClaims: ["exp", "nbf", "iat", "sub"],
  };
  const op = async () => {
    const { payload } = await jwtVerify(token.token, key, options);
    return (
      payload.azp === token.authorized_party &&
      payload.sts !== "pending" &&
      payload.sub === token.user_id &&
      payload.o?.rol === "admin"
    );
  };
  if (!(await op())) throw new Error("jose refused the benchmark token");
  results.push({
    group: "token",
    name: "jose: jwtVerify (SPKI key imported once) + azp",
    runtime: runtime("jose"),
    rounds_us: await measure(plan.token_iterations, op),
  });
}

process.stdout.write(JSON.stringify({ results }) + "\n");
