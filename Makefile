# The two commands that matter: `make local` runs the system, `make test` runs every check.
SHELL := bash
.DEFAULT_GOAL := help
CARGO ?= cargo
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
DEVTOOL := $(CARGO) run -q -p local-stack --bin devtool --
# The running local stack's files (env, outputs, token key, metrics); another folder for a second stack.
LOCAL_STATE_DIR ?= .local
export LOCAL_STATE_DIR
# clerk-sync-ops on the running local stack (ENV=dev|staging|prod: on a deployed one instead).
OPS := $(CARGO) run -q -p clerk-sync-ops -- $(if $(ENV),--env $(ENV))

.PHONY: backfill reconcile redrive inspect resync help setup local test fmt lint lint-template lint-openapi build post queue event user events reset me get token watch invoke-webhook invoke-sync invoke-api bench bench-micro bench-peers bench-emulator load load-faults load-tests deploy destroy smoke smoke-local cold-start fuzz

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: ## install the project's Python tools (moto, cargo-lambda) into ./.venv; idempotent
	@scripts/bootstrap.sh

local: setup ## run the whole system locally: emulator, resources, gateway on 127.0.0.1:LOCAL_PORT (3000)
	@echo "make local: building the local stack (the first build takes a few minutes; cargo shows its progress)" >&2
	$(CARGO) build -p local-stack --bin local-stack --bin devtool
	$(CARGO) run -q -p local-stack --bin local-stack

test: setup ## every test and lint: formatting, clippy, unit, emulator-backed integration, end to end
	$(MAKE) lint-template
	$(MAKE) lint-openapi
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --all-targets --locked

lint-template: setup ## check template.yaml: cfn-lint, sam validate --lint, the template property checks
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --region us-east-1
	$(VENV)/bin/python -B -m unittest discover -s infra/template_checks -v

lint-openapi: setup ## validate functions/api/openapi.json against the OpenAPI 3.1 specification
	$(VENV)/bin/openapi-spec-validator functions/api/openapi.json

fmt: ## format the code
	$(CARGO) fmt --all

post: ## sign a fixture now and post it to the running local stack (FIXTURE=user.created)
	$(DEVTOOL) post $(or $(FIXTURE),user.created)

queue: ## show the local queues (TAKE=1 drains and prints the events queue)
	$(DEVTOOL) queue $(if $(TAKE),--take)

me: ## GET /v1/users/me on the local stack with a fresh token (ID=user_… to be someone else, TOKEN=… a real one); fails unless 2xx
	@$(DEVTOOL) get /v1/users/me --as $(or $(ID),user_35kQ7zvT0cWnHq1d2xXy9RbLmAa) $(if $(TOKEN),--token "$(TOKEN)")

get: ## GET any path on the local stack with a fresh token (ROUTE=/v1/users/…, ID=…, ADMIN=1, TOKEN=…); fails unless 2xx
	@$(DEVTOOL) get $(or $(ROUTE),/v1/users/me) --as $(or $(ID),user_35kQ7zvT0cWnHq1d2xXy9RbLmAa) $(if $(ADMIN),--admin) $(if $(TOKEN),--token "$(TOKEN)")

token: ## print a session token from the local Clerk (ID=user_…, ADMIN=1 for the admin claim)
	@$(DEVTOOL) token $(or $(ID),user_35kQ7zvT0cWnHq1d2xXy9RbLmAa) $(if $(ADMIN),--admin)

user: ## print a user's record in the local users table (ID=user_…)
	@$(DEVTOOL) user $(or $(ID),user_35kQ7zvT0cWnHq1d2xXy9RbLmAa)

reset: ## empty the local stack's tables and queues (the stack keeps running)
	@$(DEVTOOL) reset

events: ## print the local event log, oldest first (ID=user_… for one user's events)
	@$(DEVTOOL) events $(if $(ID),--user $(ID))

event: ## print a freshly signed API Gateway v2 event for a fixture (FIXTURE=user.created)
	@$(DEVTOOL) event $(or $(FIXTURE),user.created)

watch: setup ## run the functions under `cargo lambda watch` against the running local stack
	cargo lambda watch --env-file $(LOCAL_STATE_DIR)/lambda.env

invoke-webhook: setup ## sign a fixture into a fresh API Gateway event and `cargo lambda invoke` the webhook
	@mkdir -p $(LOCAL_STATE_DIR)
	$(DEVTOOL) event $(or $(FIXTURE),user.created) > $(LOCAL_STATE_DIR)/webhook-event.json
	cargo lambda invoke webhook --data-file $(LOCAL_STATE_DIR)/webhook-event.json

invoke-sync: setup ## `cargo lambda invoke` the sync function with an SQS event fixture (FIXTURE=good-batch|poison-batch), or FROM_QUEUE=1: what is queued (LOCAL_SYNC=off)
	@mkdir -p $(LOCAL_STATE_DIR)
	$(if $(FROM_QUEUE),$(DEVTOOL) sqs-event --from-queue > $(LOCAL_STATE_DIR)/sqs-event.json)
	cargo lambda invoke sync --data-file $(if $(FROM_QUEUE),$(LOCAL_STATE_DIR)/sqs-event.json,tests/fixtures/sqs/$(or $(FIXTURE),good-batch).json)

invoke-api: setup ## mint a token into a fresh API Gateway event for /v1/users/me and `cargo lambda invoke` the api
	@mkdir -p $(LOCAL_STATE_DIR)
	$(DEVTOOL) api-event $(or $(ROUTE),/v1/users/me) --as $(or $(ID),user_35kQ7zvT0cWnHq1d2xXy9RbLmAa) > $(LOCAL_STATE_DIR)/api-event.json
	cargo lambda invoke api --data-file $(LOCAL_STATE_DIR)/api-event.json

build: setup ## sam build (cargo-lambda, release) the three functions into .aws-sam/build, then check glibc and zip sizes
	sam build --beta-features
	scripts/check-build.sh

deploy: setup ## guided deploy (ENV=dev|staging|prod): asks for the Clerk values once (kept in .deploy/, untracked), builds, deploys, sets the secrets, smoke-tests
	@$(VENV)/bin/python scripts/deploy.py deploy $(or $(ENV),dev)

destroy: setup ## delete a deployed stack (ENV=…) after you type its name; says what is retained and how to delete it
	@$(VENV)/bin/python scripts/deploy.py destroy $(or $(ENV),dev)

smoke: setup ## smoke-test a deployed stack from its outputs (ENV=dev|staging|prod; asks for a session token unless SMOKE_TOKEN; FORGERY=1)
	@mkdir -p $(LOCAL_STATE_DIR)
	$(CARGO) build -q -p e2e --bin smoke
	sam list stack-outputs --config-env $(or $(ENV),dev) --output json > $(LOCAL_STATE_DIR)/stack-outputs-$(or $(ENV),dev).json
	@$(CARGO) run -q -p e2e --bin smoke -- --outputs $(LOCAL_STATE_DIR)/stack-outputs-$(or $(ENV),dev).json $(if $(FORGERY),--check-forgery)

smoke-local: ## the same smoke test against the running local stack (`make local`), with a fresh local token
	@echo "make smoke-local: building the smoke test (a minute or two the first time)" >&2
	@$(CARGO) build -p e2e --bin smoke
	@SMOKE_TOKEN=$$($(DEVTOOL) token) $(CARGO) run -q -p e2e --bin smoke -- --outputs $(LOCAL_STATE_DIR)/stack-outputs.json --check-forgery

cold-start: setup ## build the release bootstraps and measure init (vs an empty function, with a breakdown), invocations, CPU, memory (MB=128,256: Lambda's CPU share, root; BEFORE=dir: another build side by side; CERTS=bundle)
	cargo lambda build --release --locked -p empty -p webhook -p sync -p api
	$(CARGO) run -q -p local-stack --bin cold-start -- $(if $(RUNS),--runs $(RUNS)) $(if $(MB),--mb $(MB)) $(if $(BEFORE),--before $(BEFORE)) $(if $(CERTS),--env SSL_CERT_FILE=$(CERTS))

FUZZ_SECONDS ?= 30
fuzz: ## run every fuzz target for FUZZ_SECONDS each (30), or FUZZ_CASES cases; a failure leaves its seed in <target>.proptest-regressions
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --locked -p clerk-sync-domain \
		--test fuzz_envelope --test fuzz_signature_header --test fuzz_bearer_token -- --nocapture --test-threads 1
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --locked -p clerk-sync --lib adapters::sqs::wire::fuzz:: -- --nocapture --test-threads 1

backfill: ## every Clerk user into the users table (RESUME=1, DRY_RUN=1; seed the local Clerk with `LOCAL_CLERK_USERS=2000 make local`)
	$(OPS) backfill $(if $(RESUME),--resume) $(if $(DRY_RUN),--dry-run)

reconcile: ## compare the users table with Clerk: missing, older, absent from Clerk (FIX=1 repairs, SAMPLE=N)
	$(OPS) reconcile $(if $(FIX),--fix) $(if $(SAMPLE),--sample $(SAMPLE))

redrive: ## move the dead-letter queue back to the events queue (PEEK=1 only lists it)
	$(OPS) redrive $(if $(PEEK),--peek)

inspect: ## one event by svix id (SVIX_ID=msg_…) or a user's timeline (ID=user_…); SHOW_PII=1 for the profile
	$(OPS) inspect $(if $(ID),--user $(ID),$(SVIX_ID)) $(if $(SHOW_PII),--show-pii)

resync: ## fetch users from Clerk's Backend API and apply them (ID="user_… user_…")
	$(OPS) resync $(ID)

LOAD_ARGS = $(if $(USERS),--users $(USERS)) $(if $(DELIVERIES),--deliveries $(DELIVERIES)) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) $(if $(SYNC_CONCURRENCY),--sync-concurrency $(SYNC_CONCURRENCY)) $(if $(SEED),--seed $(SEED)) $(if $(JSON),--json $(JSON))
load: setup ## full-size load test on a fresh local stack: 500 users, 5,000 deliveries, C=32; zero-loss oracle (USERS= DELIVERIES= CONCURRENCY= SYNC_CONCURRENCY= SEED= JSON=)
	$(CARGO) build --locked --release -p load
	target/release/load $(LOAD_ARGS)

load-faults: setup ## the same through a fault proxy (throttling, 5xx, resets, a 10 s outage; OUTAGE=seconds); zero-loss oracle
	$(CARGO) build --locked --release -p load
	target/release/load --faults $(if $(OUTAGE),--outage-seconds $(OUTAGE)) $(LOAD_ARGS)

load-tests: setup ## make test's load, fault, poison-redrive and kill -9 tests at full size (LOAD_USERS=500 LOAD_DELIVERIES=5000 by default)
	$(CARGO) build --locked -p local-stack --bin local-stack
	LOAD_USERS=$(or $(LOAD_USERS),500) LOAD_DELIVERIES=$(or $(LOAD_DELIVERIES),5000) $(CARGO) test --locked -p load --tests -- --nocapture --test-threads 1

bench: setup ## every benchmark table of BENCHMARKS.md in one run: micro, peers, emulator, cold start, load, load with faults (~45 min the first time, builds included)
	$(MAKE) bench-micro
	$(MAKE) bench-peers
	$(MAKE) bench-emulator
	$(MAKE) cold-start
	$(MAKE) load
	$(MAKE) load-faults

bench-micro: ## criterion benchmarks (release profile): verify-and-prepare, token verification, sync batch
	$(CARGO) bench --workspace --locked

bench-emulator: setup ## the emulator's SQS and DynamoDB calls alone, as the project runs moto and without its patches (BACKLOG=1000 PUTS=2000)
	$(VENV)/bin/python infra/devkit/bench/emulator.py --plain $(if $(BACKLOG),--backlog $(BACKLOG)) $(if $(PUTS),--puts $(PUTS))

bench-peers: ## ours vs svix (Rust, Node, Python), @clerk/backend, jose, PyJWT on the same inputs, one table (ROUNDS=15, JSON=file; docs/benchmarks-peers.md)
	@scripts/bootstrap-bench.sh
	$(CARGO) run --release --locked -q -p bench --bin peers -- $(if $(ROUNDS),--rounds $(ROUNDS)) $(if $(JSON),--json $(JSON))
