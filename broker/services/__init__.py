"""One function per use case: each takes a session (and the acting account), commits once,
and raises broker.errors on refusal."""
