"""`Idempotency-Key` on writes: a retry returns the first answer and does nothing twice."""
