"""The HTTP and Lambda edge: every entry point, how requests are read and replies written, and the API's description.

Nothing below it imports it (the import contracts in .importlinter say so).
"""
