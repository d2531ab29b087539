class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request (the API's 409)."""
