"""Errors that the command line reports as one line."""


class StructureBenchError(Exception):
    """A user-facing problem (bad id, bad input, bad file); its message is one line."""


class UnknownTaskError(StructureBenchError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownMethodError(StructureBenchError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class MethodError(StructureBenchError):
    """A dictionary learner broke the protocol (raised, NaN output, wrong shape)."""
