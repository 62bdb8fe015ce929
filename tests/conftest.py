"""Shared pytest fixtures for the gitartifacts test suite."""

# ---------------------------------------------------------------------------------------
# S3 (moto) — a real S3 endpoint on 127.0.0.1 for the remote tests (tests/s3_server.py).
# Fixtures: s3_server (session: one moto server behind a request counter) and s3 (per test:
# moto reset, bucket "gart-test", AWS_* test credentials set with monkeypatch).
# ---------------------------------------------------------------------------------------
from s3_server import s3, s3_server  # noqa: E402, F401
