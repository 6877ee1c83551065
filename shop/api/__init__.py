"""The signed JSON API (DESIGN.md "Signed JSON API (v1)") and the API keys that sign it.

`keys` issues and checks keys, `signing` is the signature both sides compute, `service` turns
the shop's objects into API answers, `views` and `account` are the thin web layers, `openapi`
is the reference document and `client` a small signing client for tests, bench and docs.
"""
