"""Rate limits (SPEC §13): a request budget per credential, shared by every worker through PostgreSQL,
and a budget of failed authentications per client address, kept by each worker."""
