"""Resolving reference tokens just before a real call, and SecretError when that fails."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from legion.dsl.budget import step_binding
from legion.dsl.tokens import make_token
from legion.engine.errors import NotFound
from legion.engine.secrets import MASKER, EmbeddedSecrets, Resolver, SecretError, VaultSecrets, resolve_tokens

# Tokens made for step run 1 of run r-1: what that step run's call resolves.
BINDING = step_binding("r-1", 1)


def secret_token(reference: str) -> str:
    return make_token(reference, BINDING)


TOKEN = secret_token('api#token')


def lookup(reference: str) -> Any:
    return {"api#token": "s3cr3t-value", "cfg#doc": {"a": [1, 2]}, "cfg#port": 5432}[reference]


def test_a_string_that_is_one_token_becomes_the_value_itself() -> None:
    assert resolve_tokens(TOKEN, lookup, BINDING) == "s3cr3t-value"
    assert resolve_tokens(f"{secret_token('cfg#doc')}", lookup, BINDING) == {"a": [1, 2]}
    assert resolve_tokens(f"{secret_token('cfg#port')}", lookup, BINDING) == 5432


def test_a_token_inside_text_becomes_its_text() -> None:
    assert resolve_tokens(f"Bearer {TOKEN}", lookup, BINDING) == "Bearer s3cr3t-value"
    assert resolve_tokens(f"port={secret_token('cfg#port')}, doc={secret_token('cfg#doc')}", lookup, BINDING) == "port=5432, doc={'a': [1, 2]}"


def test_tokens_are_found_at_any_depth_and_nothing_else_changes() -> None:
    args = {"headers": {"Authorization": f"Bearer {TOKEN}"}, "items": [1, TOKEN, "plain"], "n": None}
    resolved = resolve_tokens(args, lookup, BINDING)
    assert resolved == {"headers": {"Authorization": "Bearer s3cr3t-value"}, "items": [1, "s3cr3t-value", "plain"], "n": None}
    assert args["items"][1] == TOKEN  # the input (what was recorded) keeps the reference


def test_arguments_without_tokens_are_returned_as_they_are() -> None:
    args = {"a": {"b": ["x", 1]}, "c": "«not a token»"}
    assert resolve_tokens(args, lookup, BINDING) is args


def test_the_resolver_reads_each_reference_once_per_call_and_remembers_values(embedded: EmbeddedSecrets) -> None:
    reads: list[str] = []

    class Counting(EmbeddedSecrets):
        def get(self, reference: str) -> Any:
            reads.append(reference)
            return super().get(reference)

    resolver = Resolver(Counting(embedded.home))
    assert resolver.resolve({"a": TOKEN, "b": f"x {TOKEN}"}, BINDING) == {"a": "s3cr3t-value", "b": "x s3cr3t-value"}
    assert reads == ["api#token"]
    assert MASKER.text("got s3cr3t-value") == "got ***"


def test_the_store_is_not_opened_for_arguments_without_secrets() -> None:
    def factory() -> Any:
        raise AssertionError("opened")

    assert Resolver(factory=factory).resolve({"a": "plain"}, BINDING) == {"a": "plain"}


def test_a_missing_secret_is_a_secret_error_naming_it_and_what_to_do(embedded: EmbeddedSecrets) -> None:
    with pytest.raises(SecretError) as caught:
        Resolver(embedded).resolve({"a": f"{secret_token('api#nope')}"}, BINDING)
    assert caught.value.type == "SecretError"
    assert "'api#nope'" in caught.value.message and "legion secret set api nope" in caught.value.message
    with pytest.raises(SecretError, match="nothing at path 'other'"):
        Resolver(embedded).resolve({"a": f"{secret_token('other#k')}"}, BINDING)


def test_an_unreachable_vault_is_a_secret_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = VaultSecrets(f"http://127.0.0.1:{port}", "root", timeout=2)
    with pytest.raises(SecretError, match=r"'api#token'.*cannot be reached.*VAULT_ADDR"):
        Resolver(store).resolve({"a": TOKEN}, BINDING)


def test_text_that_only_looks_like_a_token_is_left_alone(embedded: EmbeddedSecrets) -> None:
    """Only secret() makes tokens (they carry a MAC): a run's input or a step's result that
    contains token-like text cannot make a step read a secret."""
    forged = {"a": "«secret:api#token»", "b": "x «secret:api#token|" + "0" * 24 + "» y", "c": "«secret:no-hash»"}
    assert Resolver(embedded).resolve(forged, BINDING) == forged
    # A real token, but made for another step run (copied from a record), or for none.
    other = {"a": make_token("api#token", step_binding("r-1", 2)), "b": make_token("api#token", step_binding("r-2", 1)),
             "c": make_token("api#token", "")}
    assert Resolver(embedded).resolve(other, BINDING) == other


def test_a_rehearsal_resolves_secrets_for_real_calls(rehearse: Any, embedded: EmbeddedSecrets) -> None:
    result = rehearse("""
        chain: rehearsed
        steps:
          call:
            run: core.util.echo
            with: {message: "Bearer {{ secret('api#token') }}"}
        output: {said: "{{ result }}"}
    """, embedded)
    assert result.status == "succeeded"
    assert result.output == {"said": "Bearer s3cr3t-value"}  # the run itself sees the value ...
    assert MASKER.mask(result.output) == {"said": "Bearer ***"}  # ... what is recorded or printed does not


def test_a_secret_error_is_an_ordinary_step_failure_retried_and_handled(rehearse: Any, embedded: EmbeddedSecrets) -> None:
    result = rehearse("""
        chain: handled
        steps:
          call:
            run: core.util.echo
            with: {message: "{{ secret('api#missing') }}"}
            retry: {count: 2, delay: 1s}
            next:
              - when: failed
                publish: {why: "{{ error.type }}: {{ error.message }}"}
                do: fallback
          fallback:
            run: core.util.echo
            with: {message: "{{ ctx.why }}"}
        output: {why: "{{ ctx.why }}"}
    """, embedded)
    assert result.status == "succeeded"
    assert result.sequence == ["call", "call", "call", "fallback"]
    assert result.output["why"].startswith("SecretError: secret 'api#missing'")


def test_mocked_steps_never_read_secrets(rehearse: Any, embedded: EmbeddedSecrets) -> None:
    result = rehearse("""
        chain: mocked
        steps:
          call:
            run: core.util.echo
            with: {message: "{{ secret('api#missing') }}"}
    """, embedded, mocks={"call": ["ok"]})
    assert result.status == "succeeded"


def test_embedded_get_names_the_keys_there(embedded: EmbeddedSecrets) -> None:
    with pytest.raises(NotFound, match=r"keys there: token"):
        embedded.get("api#other")
