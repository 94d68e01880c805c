# Hourglass — every entry point a person or CI needs. Each target installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_MODULES := node_modules/.package-lock.json
export METADATA_SERVER_DETECTION := none

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(NODE_MODULES): package.json $(wildcard packages/*/package.json services/*/package.json)
	npm ci --no-audit --no-fund || npm install --no-audit --no-fund
	@touch $@

deps: $(NODE_MODULES) ## install npm dependencies
	@bash scripts/check-prereqs.sh

build: deps ## compile every workspace (tsc -b)
	npx tsc -b

# The offline Terraform check reads the google provider's schema from a 307 MB package that
# only it needs: installed here, apart from the workspaces, never by `make deps`.
INFRA_VALIDATE := tools/infra-validate
INFRA_PROVIDER := $(INFRA_VALIDATE)/node_modules/.package-lock.json
$(INFRA_PROVIDER): $(INFRA_VALIDATE)/package.json $(INFRA_VALIDATE)/package-lock.json
	npm ci --prefix $(INFRA_VALIDATE) --no-audit --no-fund
	@touch $@

infra-validate: deps $(INFRA_PROVIDER) ## offline terraform validate: infra/ against the hashicorp/google schema
	npx tsc -p $(INFRA_VALIDATE)
	node $(INFRA_VALIDATE)/dist/main.js --provider $(INFRA_VALIDATE)/node_modules/@cdktf/provider-google infra

infra-schema: deps $(INFRA_PROVIDER) ## rewrite tools/infra-validate's schema extract (after infra/ uses a new type)
	npx tsc -p $(INFRA_VALIDATE)
	node $(INFRA_VALIDATE)/dist/main.js --provider $(INFRA_VALIDATE)/node_modules/@cdktf/provider-google --write-schema infra

# The gateway's WebAssembly body reader is committed built; only a change to its C source needs clang.
wasm: ## rebuild packages/schemas/native/json-avro.wasm from json-avro.c (needs Debian's clang and lld)
	bash packages/schemas/native/build.sh

lint: build ## type-check tests, eslint, prettier, terraform fmt, infra inputs current
	npx tsc -p tests
	npx eslint .
	npx prettier --check .
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive infra; fi
	node packages/cli/bin/hourglass.js infra check

test: build ## run every test, both jest projects (the emulator project starts its own Pub/Sub emulator)
	@mkdir -p .run
	npx jest --ci --json --outputFile=.run/jest-results.json

test-unit: deps ## the unit project only: pure tests, no emulator, seconds (npx jest --selectProjects unit)
	npx jest --ci --selectProjects unit

run: build ## start emulator, topics, gateway and consumer on local defaults (Ctrl-C stops all)
	bash scripts/run.sh

demo: build ## like run, with one-minute windows and a traffic generator
	HOURGLASS_DEMO=1 bash scripts/run.sh

bench: build ## gateway, consumer and end-to-end benchmarks with raw ceilings
	node bench/run.js

test-faults: build ## the full nothing-lost suite (longer than the CI form)
	HOURGLASS_FAULTS=full npx jest --ci tests/faults tests/deployed

test-scale: build ## the fleet scale test at the issue's scale: 100 types, 4 replicas, kill and add (needs more than 2 cores)
	HOURGLASS_FAULTS=full HOURGLASS_FLEET_TYPES=100 npx jest --ci tests/faults/fleet-scale

clean: ## remove build output and local data
	rm -rf packages/*/dist services/*/dist data .run

.PHONY: help deps build infra-validate infra-schema wasm lint test test-unit run demo bench test-faults test-scale clean
