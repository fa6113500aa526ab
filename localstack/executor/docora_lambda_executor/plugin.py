"""The plux entry point LocalStack looks up by the name in LAMBDA_RUNTIME_EXECUTOR."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class LocalExecutorPlugin(RuntimeExecutorPlugin):
    name = "local"

    def load(self, *args, **kwargs):
        # Imported here: plux lists plugins without loading them, and the executor pulls in Lambda internals.
        from docora_lambda_executor.executor import LocalProcessExecutor

        return LocalProcessExecutor
