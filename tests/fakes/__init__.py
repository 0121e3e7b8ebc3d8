"""Fakes of the edges we cannot reach in tests (a local Mistral API)."""
