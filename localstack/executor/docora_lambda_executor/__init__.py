"""LocalStack's Lambda without Docker: each execution environment is a host process of a chosen Python.

Installed into LocalStack's own virtual environment, where it registers the `local` runtime executor
(LAMBDA_RUNTIME_EXECUTOR=local). `bootstrap` is the part that runs as the function's process.
"""
