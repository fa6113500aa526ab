"""The local stack: `make run` (devstack), LocalStack in host mode (host, executor/), the deployment (deploy).

This folder is named `localstack` because STYLE.md puts the LocalStack tier here. It shadows the real
`localstack` package for any Python started in the repository root, so LocalStack itself runs from its own
venv (.venv-localstack) with its working folder under .docora/ (or a test's temporary folder), never here;
the executor plugin in executor/ is an installable package of its own, imported as `docora_lambda_executor`.
"""
