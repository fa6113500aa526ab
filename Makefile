# The two commands of the README: `make run` and `make test`.

# The project targets Python 3.11; any python3 will do when 3.11 is not installed.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
UV = .venv/bin/uv
# `make package STAGE=prod` writes the CloudFormation template and zip for AWS there (docs/deploying.md).
STAGE ?= prod
PACKAGE_DIR = .docora/package-$(STAGE)
TEST_ENV = TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres} \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

.PHONY: test-slow .venv .venv-localstack run migrate import-original package lint-template test chromium screenshots swagger-ui

# ---- environments and local stack --------------------------------------------

.venv: .venv/.installed
.venv-localstack: .venv-localstack/.installed

# The stamp, not the folder, is the target: editing a requirements file reinstalls. uv installs in seconds
# what pip takes a minute for, and compiles the bytecode that this machine's PYTHONDONTWRITEBYTECODE skips.
.venv/.installed: $(wildcard requirements*.txt)
	test -x .venv/bin/python || $(PYTHON) -m venv .venv
	.venv/bin/python -m pip install --quiet $$(grep '^uv==' requirements-dev.txt)
	$(UV) pip install --quiet --python .venv/bin/python --compile-bytecode -r requirements-dev.txt
	touch $@

# LocalStack in its own venv: it runs on Python 3.13 only, pins its own boto3, and brings a `moto` of its
# own (LOCALSTACK.md §6). localstack/python313 finds the interpreter or says how to get one.
.venv-localstack/.installed: localstack/constraints.txt localstack/executor/pyproject.toml \
		$(wildcard localstack/executor/docora_lambda_executor/*.py) | .venv/.installed
	test -x .venv-localstack/bin/python || \
		{ python313=$$(localstack/python313) && $(UV) venv --quiet --python "$$python313" .venv-localstack; }
	$(UV) pip install --quiet --python .venv-localstack/bin/python --compile-bytecode \
		-c localstack/constraints.txt --reinstall-package docora-lambda-executor \
		'localstack-core[runtime]' ./localstack/executor
	touch $@

# LocalStack (unless AWS_ENDPOINT_URL names one), Postgres, Redis, the deployed stack; Ctrl-C stops them.
# GITHUB=local adds the GitHub stand-ins, serving the repositories in GITHUB_REPOS (default .docora/repos).
run: .venv/.installed $(if $(AWS_ENDPOINT_URL),,.venv-localstack/.installed)
	PYTHONPATH=localstack .venv/bin/python -m docora_local.devstack

# Applies sql/migrations to the database named by DATABASE_URL.
migrate: .venv/.installed
	.venv/bin/python -m chalicelib.migrate

# Imports the original Docora's database (FROM=its DATABASE_URL) into DATABASE_URL, with the original's
# ENCRYPTION_KEY; DRY_RUN=1 only reports. docs/migrating.md is the whole procedure.
import-original: .venv/.installed
	.venv/bin/python -m chalicelib.import_original --from "$(FROM)" $(if $(DRY_RUN),--dry-run,)

# What CloudFormation deploys: sam.json (with .chalice/merge-template.json merged in) and deployment.zip.
package: .venv/.installed
	rm -rf $(PACKAGE_DIR)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} .venv/bin/chalice package --stage $(STAGE) \
		--merge-template .chalice/merge-template.json $(PACKAGE_DIR)

lint-template: package
	.venv/bin/cfn-lint $(PACKAGE_DIR)/sam.json

# ---- tests and lint ----------------------------------------------------------

# Debian's headless Chromium and its driver, for the browser tier (tests/browser); installed only when missing.
chromium:
	test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# Swagger UI for /docs, vendored in chalicelib/edge/static/swagger-ui: fetched from the npm registry again at this version.
SWAGGER_UI_VERSION = 5.35.0
swagger-ui:
	rm -rf .docora/swagger-ui && mkdir -p .docora/swagger-ui
	cd .docora/swagger-ui && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) && tar xzf swagger-ui-dist-*.tgz
	cd .docora/swagger-ui/package && cp swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE \
		swagger-ui-bundle.js.LICENSE.txt ../../../chalicelib/edge/static/swagger-ui/
	sed -i 's/^swagger-ui-dist [0-9.]*,/swagger-ui-dist $(SWAGGER_UI_VERSION),/' chalicelib/edge/static/swagger-ui/VERSION

# docs/screenshots/*.png, taken by the browser tier's tests, for the README.
screenshots: .venv/.installed chromium
	DOCORA_SCREENSHOTS=1 $(TEST_ENV) .venv/bin/pytest -q tests/browser

# Lint, layering, the AWS template, unit, integration and browser tests, then the end-to-end tier on LocalStack.
test: .venv/.installed .venv-localstack/.installed chromium
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	$(MAKE) --no-print-directory lint-template STAGE=prod
	$(TEST_ENV) .venv/bin/pytest -m "not slow" --ignore=tests/e2e
	$(TEST_ENV) .venv/bin/pytest -m "not slow" tests/e2e

# The long-running tests: the load scenario (50 apps x 20 repositories); its figures go to bench/results.
test-slow: .venv/.installed
	$(TEST_ENV) .venv/bin/pytest -m slow
