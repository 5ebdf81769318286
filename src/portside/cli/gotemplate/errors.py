"""The one exception a template raises, whether it fails to parse or to run."""

from __future__ import annotations

from portside.errors import InvalidArgument


class TemplateError(InvalidArgument):
    """A template that does not parse or fails while running; the message is Go's.

    ``partial`` holds what had been written before an execution error, as Go
    leaves it in the writer.
    """

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial
