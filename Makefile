# The two commands that matter: `make local` runs the system, `make test` runs every check.
SHELL := bash
.DEFAULT_GOAL := help
CARGO ?= cargo
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
DEVTOOL := $(CARGO) run -q -p local-stack --bin devtool --

.PHONY: help setup local test fmt lint lint-template lint-openapi build post queue event user events me get token watch invoke-webhook invoke-sync invoke-api bench smoke smoke-local cold-start fuzz

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: ## install the project's Python tools (moto, cargo-lambda) into ./.venv; idempotent
	@scripts/bootstrap.sh

local: setup ## run the whole system locally: emulator, resources, gateway on 127.0.0.1:LOCAL_PORT (3000)
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

me: ## GET /v1/users/me on the local stack with a fresh token (ID=user_… to be someone else)
	@$(DEVTOOL) get /v1/users/me --as $(or $(ID),user_35kQ7zvT0cWnHq1d2xXy9RbLmAa)

get: ## GET any path on the local stack with a fresh token (ROUTE=/v1/users/…, ID=…, ADMIN=1)
	@$(DEVTOOL) get $(or $(ROUTE),/v1/users/me) --as $(or $(ID),user_35kQ7zvT0cWnHq1d2xXy9RbLmAa) $(if $(ADMIN),--admin)

token: ## print a session token from the local Clerk (ID=user_…, ADMIN=1 for the admin claim)
	@$(DEVTOOL) token $(or $(ID),user_35kQ7zvT0cWnHq1d2xXy9RbLmAa) $(if $(ADMIN),--admin)

user: ## print a user's record in the local users table (ID=user_…)
	@$(DEVTOOL) user $(or $(ID),user_35kQ7zvT0cWnHq1d2xXy9RbLmAa)

events: ## print the local event log, oldest first (ID=user_… for one user's events)
	@$(DEVTOOL) events $(if $(ID),--user $(ID))

event: ## print a freshly signed API Gateway v2 event for a fixture (FIXTURE=user.created)
	@$(DEVTOOL) event $(or $(FIXTURE),user.created)

watch: setup ## run the functions under `cargo lambda watch` against the running local stack
	cargo lambda watch --env-file .local/lambda.env

invoke-webhook: setup ## sign a fixture into a fresh API Gateway event and `cargo lambda invoke` the webhook
	@mkdir -p .local
	$(DEVTOOL) event $(or $(FIXTURE),user.created) > .local/webhook-event.json
	cargo lambda invoke webhook --data-file .local/webhook-event.json

invoke-sync: setup ## `cargo lambda invoke` the sync function with an SQS event fixture (FIXTURE=good-batch|poison-batch)
	cargo lambda invoke sync --data-file tests/fixtures/sqs/$(or $(FIXTURE),good-batch).json

invoke-api: setup ## mint a token into a fresh API Gateway event for /v1/users/me and `cargo lambda invoke` the api
	@mkdir -p .local
	$(DEVTOOL) api-event $(or $(ROUTE),/v1/users/me) --as $(or $(ID),user_35kQ7zvT0cWnHq1d2xXy9RbLmAa) > .local/api-event.json
	cargo lambda invoke api --data-file .local/api-event.json

build: setup ## sam build (cargo-lambda, release) the three functions into .aws-sam/build, then check glibc and zip sizes
	sam build --beta-features
	scripts/check-build.sh

smoke: setup ## smoke-test a deployed stack from its outputs (ENV=dev|staging|prod; asks for a session token unless SMOKE_TOKEN; FORGERY=1)
	@mkdir -p .local
	$(CARGO) build -q -p e2e --bin smoke
	sam list stack-outputs --config-env $(or $(ENV),dev) --output json > .local/stack-outputs-$(or $(ENV),dev).json
	@$(CARGO) run -q -p e2e --bin smoke -- --outputs .local/stack-outputs-$(or $(ENV),dev).json $(if $(FORGERY),--check-forgery)

smoke-local: ## the same smoke test against the running local stack (`make local`), with a fresh local token
	@SMOKE_TOKEN=$$($(DEVTOOL) token) $(CARGO) run -q -p e2e --bin smoke -- --outputs .local/stack-outputs.json --check-forgery

cold-start: setup ## build the release bootstraps and measure init (vs an empty function, with a breakdown), invocations, CPU, memory (MB=128,256: Lambda's CPU share, root; BEFORE=dir: another build side by side; CERTS=bundle)
	cargo lambda build --release --locked -p empty -p webhook -p sync -p api
	$(CARGO) run -q -p local-stack --bin cold-start -- $(if $(RUNS),--runs $(RUNS)) $(if $(MB),--mb $(MB)) $(if $(BEFORE),--before $(BEFORE)) $(if $(CERTS),--env SSL_CERT_FILE=$(CERTS))

FUZZ_SECONDS ?= 30
fuzz: ## run every fuzz target for FUZZ_SECONDS each (30), or FUZZ_CASES cases; a failure leaves its seed in <target>.proptest-regressions
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --locked -p clerk-sync-domain \
		--test fuzz_envelope --test fuzz_signature_header --test fuzz_bearer_token -- --nocapture --test-threads 1
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --locked -p clerk-sync --lib adapters::sqs::wire::fuzz:: -- --nocapture --test-threads 1

bench: ## criterion benchmarks (release profile)
	$(CARGO) bench --workspace
