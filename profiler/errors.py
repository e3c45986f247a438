"""Errors the commands report in one line: UserError for bad input (exit 2), ToolError when a
runtime, exporter or device fails on good input (exit 1). A Python caller catches them as usual:
bad input is a ValueError, a failing tool a RuntimeError; exit codes are the commands' business."""


class UserError(ValueError):
    pass


class ToolError(RuntimeError):
    pass


class DeviceError(ToolError):
    """The device answered with an error: its runtime failed on a model (not worth retrying)."""


class TransportError(ToolError):
    """The way to the device failed: a lost connection, a vanished phone, a timeout. Worth retrying
    after a pause, with a fresh connection."""


class DeviceUnavailable(UserError):
    """The device cannot be used at all (unreachable, refused, missing a runtime), found before any
    work began."""
