"""The one exception a reader raises for a file it refuses."""


class FileProblem(Exception):
    """A file-level problem: the code is one of error_codes.ERRORS."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params
