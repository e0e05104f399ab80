class ApplicationError(Exception):
    """A refusal by a service, with a translated message the user can act on.

    Views turn it into a form error or a flash message; the API into a 400 with a JSON body.
    """

    def __init__(self, message, *, code: str = "invalid", extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}

    def __str__(self) -> str:
        return str(self.message)
