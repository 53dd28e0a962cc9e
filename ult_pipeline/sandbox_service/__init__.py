"""A sandbox copy of the KidsLoop user-service API (4.5.0) over PostgreSQL.

It answers the same GraphQL documents, auth and limits as the real service, so that a
load-test pipeline proven against it works against the real service unchanged.
"""
