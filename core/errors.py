"""The one exception type for bad input: the CLI prints its message and exits with status 2."""


class UserError(Exception):
    """Bad input from the user (config, logs, arguments, checkpoints): message, no traceback."""
