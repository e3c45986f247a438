"""Errors the commands report in one line: UserError for bad input (exit 2), ToolError when a
runtime, exporter or device fails on good input (exit 1)."""


class UserError(Exception):
    pass


class ToolError(RuntimeError):
    pass
