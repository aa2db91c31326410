"""Errors a service raises for the caller to show: pages as a message, the
API as `{"error": code, "detail": ...}` with the given HTTP status."""


class DomainError(Exception):
    status = 400

    def __init__(self, code: str, detail, *, status: int | None = None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        if status is not None:
            self.status = status


class InvalidInput(DomainError):
    status = 422


class Conflict(DomainError):
    status = 409


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403
