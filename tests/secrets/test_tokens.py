"""`secret("path#key")` in templates renders to a reference token, never to the value."""

from __future__ import annotations

from typing import Any

import pytest

from legion.dsl.errors import ExpressionError
from legion.dsl.expressions import Template, compile_value, secret_token, split_reference, token_reference
from legion.dsl.tokens import make_token


def test_a_single_expression_renders_to_the_token() -> None:
    assert Template("{{ secret('api#token') }}").render({}) == f"{secret_token('api#token')}"
    assert Template("{{- secret('api#token') -}}\n").render({}) == f"{secret_token('api#token')}"


def test_inside_text_the_token_is_part_of_the_string() -> None:
    assert Template("Bearer {{ secret('api#token') }}").render({}) == f"Bearer {secret_token('api#token')}"


def test_the_reference_may_be_computed() -> None:
    rendered = compile_value({"auth": "{{ secret(input.env ~ '/db#password') }}"})({"input": {"env": "prod"}})
    assert rendered == {"auth": f"{secret_token('prod/db#password')}"}


@pytest.mark.parametrize("reference", ["api", "#token", "api#", "a#b#c", " api#token", "api#token ", "/#k", "a«b#c", 42, None])
def test_a_malformed_reference_is_an_expression_error_naming_it(reference: object) -> None:
    with pytest.raises(ExpressionError) as caught:
        Template("{{ secret(ref) }}").render({"ref": reference})
    assert repr(reference) in caught.value.message
    assert "path#key" in caught.value.message


def test_an_undefined_reference_names_what_is_missing() -> None:
    with pytest.raises(ExpressionError, match="nope"):
        Template("{{ secret(input.nope) }}").render({"input": {}})


def test_split_and_token() -> None:
    assert split_reference("a/b#c") == ("a/b", "c")
    token = secret_token("a/b#c")
    assert token.startswith("«secret:a/b#c|") and token.endswith("»")
    # Made outside a step's `with`: bound to nothing, so it resolves for no step run.
    assert token_reference(token[len("«secret:"):-1], "r/1") is None
    bound = make_token("a/b#c", "r/1")
    assert token_reference(bound[len("«secret:"):-1], "r/1") == "a/b#c"
    assert token_reference(bound[len("«secret:"):-1], "r/2") is None  # another step run's
    assert token_reference(bound[len("«secret:"):-1], "") is None
    assert token_reference("a/b#c|" + "0" * 24, "r/1") is None  # a forged MAC is not a token
    assert token_reference("a/b#c", "r/1") is None


def test_a_chain_with_a_bad_reference_fails_the_run_with_expression_error(rehearse: Any, embedded: Any) -> None:
    result = rehearse("""
        chain: bad-ref
        steps:
          a:
            run: core.util.echo
            with: {message: "{{ secret('no-hash') }}"}
    """, embedded)
    assert result.status == "failed"
    assert result.error["type"] == "ExpressionError"
    assert "'no-hash'" in result.error["message"]
