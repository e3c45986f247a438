"""The one exception type for bad input: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    pass
