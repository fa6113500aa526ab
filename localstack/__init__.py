"""The local stack: what `make run` starts, and the AWS resources it creates.

This folder is named `localstack` because STYLE.md puts the LocalStack tier here. It shadows the real
`localstack` package for any Python started in the repository root, which is harmless only as long as
the project venv does not install LocalStack (LOCALSTACK.md keeps it in a separate venv).
"""
