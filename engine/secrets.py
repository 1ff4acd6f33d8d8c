"""Secrets (spec section 7): stores, resolving reference tokens, and masking known values.

`secret("path#key")` renders to a token `«secret:path#key»` (see `legion.dsl.tokens`),
so what the engine sends and records holds the reference. The worker that runs a step swaps
the tokens in its arguments for values just before the call (`Resolver`), and every value
resolved in this process is remembered by `MASKER`, which replaces it by `***` in what the
engine records (the recorder) and prints (the CLI).

The store is Vault (KV v2, through hvac) when `VAULT_ADDR` is set, else a JSON file in
`$LEGION_HOME` readable by its owner only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from legion.dsl.errors import ExpressionError
from legion.dsl.tokens import SECRET_CLOSE, SECRET_OPEN, split_reference, token_reference
from legion.dsl.trees import leaves
from legion.engine.errors import BadInput, ConfigError, LegionError, NotFound, ServiceUnavailable, StepError

log = logging.getLogger("legion.secrets")

MASK = "***"
MIN_MASKED = 4  # shorter values are not masked: masking "a" or "42" would garble everything
TOKEN = re.compile(re.escape(SECRET_OPEN) + "([^" + SECRET_OPEN[0] + SECRET_CLOSE + "]*)" + re.escape(SECRET_CLOSE))


class SecretError(StepError):
    """A step's secret could not be resolved: an ordinary step failure (retried, handled by edges)."""

    type = "SecretError"


# ---------------------------------------------------------------- masking
#
# A known secret is masked in every form it can take where something is recorded or printed:
# the value itself; a number whose text is the value (or that a numeric string becomes, as
# `"4821" | int`); its JSON escapes (ensure_ascii both ways, and Jinja's `tojson`, which also
# escapes `<>&'`); its Python repr body in either quote style; its URL encodings (`quote`,
# `quote_plus`, `quote(safe='')`); and base64 of the whole value (standard and URL-safe, with
# and without padding). A value shorter than MIN_MASKED is not masked, nor are its forms;
# a derived form shorter than MIN_MASKED is not masked either (`"0042" | int` is 42).
#
# Structured values (results, arguments, contexts, what `--json` prints) are masked on the
# structure, before they are serialized, never by a regex over JSON text, where a match could
# cut a string, an escape or a number and leave text that is not JSON: a string has its
# matches replaced, a number whose text holds a secret becomes a string (`4821` -> `"***"`),
# a mapping key is renamed. `Masker.text` is for plain text only: messages, log lines,
# tracebacks, the CLI's text rendering.


def masked_forms(text: str) -> set[str]:
    """The texts under which the secret `text` may show up, each at least MIN_MASKED long
    (`text` itself included); empty when `text` is shorter than MIN_MASKED."""
    if len(text) < MIN_MASKED:
        return set()
    import base64  # here, not at the top: only a process that learns a secret needs them
    from urllib.parse import quote, quote_plus

    found = {text}
    for ascii_only in (False, True):
        escaped = json.dumps(text, ensure_ascii=ascii_only)[1:-1]
        found.add(escaped)
        # What Jinja's `tojson` filter makes of it.
        found.add(escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027"))
    # repr() chooses its quotes by the string's content, so both bodies: with the two quote
    # characters in front, repr uses single quotes and escapes only those.
    single = repr("'\"" + text)[4:-1]
    found.add(single)
    found.add(_REPR_QUOTES.sub(lambda m: _DOUBLE_QUOTED[m.group(0)], single))
    with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate: no URL can hold it
        found |= {quote(text), quote_plus(text), quote(text, safe="")}
    raw = text.encode("utf-8", "surrogatepass")
    for encoded in (base64.b64encode(raw).decode("ascii"), base64.urlsafe_b64encode(raw).decode("ascii")):
        found |= {encoded, encoded.rstrip("=")}
    found |= _number_texts(text)
    return {form for form in found if len(form) >= MIN_MASKED}


# From a single-quoted repr body to a double-quoted one: `\'` -> `'`, `"` -> `\"`, and a
# backslash escape (`\\`) matched whole so that the quote after it is not taken for escaped.
_REPR_QUOTES = re.compile(r"""\\\\|\\'|\"""")
_DOUBLE_QUOTED = {"\\\\": "\\\\", "\\'": "'", '"': '\\"'}


def _number_texts(text: str) -> set[str]:
    """The texts of the numbers a numeric secret becomes through `| int` or `| float`."""
    found: set[str] = set()
    with contextlib.suppress(ValueError):
        found.add(str(int(text)))
    with contextlib.suppress(ValueError, OverflowError):
        number = float(text)
        if math.isfinite(number):
            found.add(repr(number))
            if number.is_integer():
                found.add(str(int(number)))
    return found


class Masker:
    """The secret values known to this process, and their replacement by `***` (see above)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()  # the values remembered, as text
        self._forms: set[str] = set()  # every form of them that is masked
        self._lock = threading.Lock()
        # Rebuilt on every new value (rare); read without the lock. None while nothing is
        # known, which is the fast check that keeps masking off the hot path.
        self._patterns: _Patterns | None = None

    @property
    def active(self) -> bool:
        return self._patterns is not None

    def remember(self, value: Any) -> None:
        """Mask `value` from now on: a string, a number's text, or every such leaf of a list or
        mapping (not its keys: those are the secret's field names)."""
        found = {s for s in _texts(value) if len(s) >= MIN_MASKED}
        with self._lock:
            if found <= self._secrets:
                return
        forms = set().union(*(masked_forms(s) for s in found))
        with self._lock:
            self._secrets |= found
            if forms <= self._forms:
                return
            self._forms |= forms
            numeric = {form for form in self._forms if set(form) <= _NUMBER_CHARS}
            self._patterns = _Patterns(_alternation(self._forms), _alternation(numeric) if numeric else None)

    def forget(self) -> None:
        """Forget every value (for tests)."""
        with self._lock:
            self._secrets.clear()
            self._forms.clear()
            self._patterns = None

    def text(self, text: str) -> str:
        """Plain text (a message, a log line) with every form of a known secret replaced. Not
        for JSON text: mask the value with `mask` before it is serialized."""
        patterns = self._patterns
        return text if patterns is None else patterns.text.sub(MASK, text)

    def mask(self, value: Any) -> Any:
        """`value` (JSON data) masked on its structure; the input is not changed. A string has
        every known secret in it replaced; an int or float whose text holds one becomes that
        text masked, a string (`4821` -> `"***"`); a mapping key holding one is renamed."""
        patterns = self._patterns
        return value if patterns is None else _mask(value, patterns)

    def mask_fields(self, row: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        """A copy of `row` with the named fields masked (the row itself when nothing is known).
        The row's own keys are kept: they are its columns."""
        patterns = self._patterns
        if patterns is None or not any(f in row for f in fields):
            return row
        return {k: _mask(v, patterns) if k in fields else v for k, v in row.items()}


def _alternation(forms: set[str]) -> re.Pattern[str]:
    """One compiled alternation of `forms` that matches the longest one where several start at
    the same place, so that a value that contains another is masked whole.

    It is shaped as a trie: `ab(?:c|d(?:ef)?)` rather than `abdef|abc|abd`. At each place in
    the text a flat alternation tries its forms one after another (and every secret brings
    several forms), where a trie follows one path, one step per character that matches. A form
    that is a prefix of another ends in an optional tail, tried first (greedy), so the longest
    form wins as in a flat alternation sorted longest first. Nesting is one group per branching
    point along a path; forms that nest past what `re` can parse fall back to the flat one."""
    trie: dict[str, Any] = {}
    for form in forms:
        node = trie
        for char in form:
            node = node.setdefault(char, {})
        node[""] = {}  # a form ends here
    try:
        return re.compile(_branches(trie))
    except RecursionError:
        return re.compile("|".join(re.escape(form) for form in sorted(forms, key=lambda form: (-len(form), form))))


def _branches(node: dict[str, Any]) -> str:
    tails = []
    for char, child in sorted(node.items()):
        if not char:
            continue
        run = [char]
        while len(child) == 1 and "" not in child:  # a run without branches is one literal
            ((char, child),) = child.items()
            run.append(char)
        tails.append(re.escape("".join(run)) + _branches(child))
    if not tails:
        return ""
    body = tails[0] if len(tails) == 1 else "(?:" + "|".join(tails) + ")"
    return f"(?:{body})?" if "" in node else body


def _texts(value: Any) -> Iterator[str]:
    """The strings (and numbers, as text) in a value, where a secret could be."""
    for _, leaf in leaves(value):
        if isinstance(leaf, str):
            yield leaf
        else:
            number = _number_text(leaf)
            if number is not None:
                yield number


def _number_text(value: Any) -> str | None:
    """An int's or float's text as JSON writes it; None for anything else (a bool included)."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int):
            return int.__repr__(value)
        if isinstance(value, float):
            return float.__repr__(value)
    except ValueError:  # an int too long to turn into text
        return None
    return None


class _Patterns(NamedTuple):
    text: re.Pattern[str]  # every form
    numbers: re.Pattern[str] | None  # the forms that a number's text can hold; None: numbers need no look


# What the text of an int or a finite float is made of.
_NUMBER_CHARS = frozenset("0123456789-+.e")


def _mask(value: Any, patterns: _Patterns) -> Any:
    if isinstance(value, str):
        return patterns.text.sub(MASK, value)
    if isinstance(value, dict):
        return _mask_mapping(value, patterns)
    if isinstance(value, (list, tuple)):
        return [_mask(v, patterns) for v in value]
    if patterns.numbers is not None:
        number = _number_text(value)
        if number is not None and patterns.numbers.search(number):
            return patterns.numbers.sub(MASK, number)
    return value


def _mask_key(key: Any, patterns: _Patterns) -> Any:
    """The key masked, or the key itself (the same object) when it holds no known secret."""
    text = key if isinstance(key, str) else _number_text(key)
    if text is None or not patterns.text.search(text):
        return key
    return patterns.text.sub(MASK, text)


def _mask_mapping(value: dict[Any, Any], patterns: _Patterns) -> dict[Any, Any]:
    try:  # one search over all the keys (a match across two only means a closer look)
        renamed = patterns.text.search("\0".join(value)) is not None
    except TypeError:  # a key that is not a string
        renamed = True
    names = [_mask_key(key, patterns) for key in value] if renamed else None
    if names is None or all(name is key for name, key in zip(names, value, strict=True)):
        return {key: _mask(item, patterns) for key, item in value.items()}
    # Renamed keys could collide with each other (two secrets, or a secret and its escaped
    # form, are both `***`) or with a kept key (`{SECRET: 1, "***": 2}`), and one would
    # overwrite the other. Kept keys keep their names; a renamed key whose name is taken gets
    # `#2`, `#3`, ... in the mapping's order, so nothing is lost and the same mapping is
    # always masked the same way.
    taken = {key for name, key in zip(names, value, strict=True) if name is key}
    masked: dict[Any, Any] = {}
    for name, (key, item) in zip(names, value.items(), strict=True):
        if name is not key:
            base, n = name, 1
            while name in taken:
                n += 1
                name = f"{base}#{n}"
            taken.add(name)
        masked[name] = _mask(item, patterns)
    return masked


MASKER = Masker()


# ---------------------------------------------------------------- stores


def normalize_path(path: str) -> str:
    """`/api/` and `api` are the same path."""
    return path.strip("/")


def check_path(path: str, key: str | None = None) -> str:
    """A path (and key) a user typed, normalized; BadInput when it cannot be a reference."""
    try:
        split_reference(f"{path}#{key if key is not None else 'key'}")
    except ExpressionError:
        what = f"path {path!r}" + (f" and key {key!r}" if key is not None else "")
        raise BadInput(f"{what}: a path and a key must be non-empty, without '#', '«', '»' or surrounding spaces "
                       "(e.g. `legion secret set db password`)") from None
    return normalize_path(path)


class SecretStore(Protocol):
    kind: str  # "embedded" or "vault"

    def describe(self) -> str: ...
    def read(self, path: str) -> dict[str, Any]: ...
    def get(self, reference: str) -> Any: ...
    def write(self, path: str, key: str, value: Any) -> None: ...
    def delete(self, path: str, key: str | None = None) -> None: ...
    def list(self) -> dict[str, list[str]]: ...


class _Store:
    """`get` on top of `read`, with the sentences both stores share."""

    kind = "store"

    def describe(self) -> str:
        raise NotImplementedError

    def read(self, path: str) -> dict[str, Any]:
        raise NotImplementedError

    def get(self, reference: str) -> Any:
        path, key = split_reference(reference)
        try:
            data = self.read(path)
        except NotFound:
            raise NotFound(f"{self.describe()} has nothing at path {normalize_path(path)!r}: set the secret with "
                           f"`legion secret set {normalize_path(path)} {key}`") from None
        if key not in data:
            raise NotFound(f"{self.describe()} has no key {key!r} at path {normalize_path(path)!r} "
                           f"(keys there: {', '.join(sorted(data)) or 'none'}): set it with "
                           f"`legion secret set {normalize_path(path)} {key}`")
        return data[key]

    def _missing_path(self, path: str) -> NotFound:
        return NotFound(f"{self.describe()} has nothing at path {normalize_path(path)!r}: "
                        f"set a key there with `legion secret set {normalize_path(path)} KEY`")


class EmbeddedSecrets(_Store):
    """Secrets in `HOME/secrets.json` ({path: {key: value}}), mode 0600, replaced whole on
    every change (temp file + rename) under an advisory lock, so a reader never sees half a
    file and two writers do not lose each other's keys."""

    kind = "embedded"

    def __init__(self, home: Path | str) -> None:
        self.home = Path(home)
        self.file = self.home / "secrets.json"

    def describe(self) -> str:
        return f"the embedded secret store ({self.file})"

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"{self.describe()} cannot be read: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{self.describe()} is not valid JSON ({exc}): fix or remove the file") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ConfigError(f"{self.describe()} is not a mapping of paths to mappings of keys: fix or remove the file")
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        """The secrets, to change in place; written back when the block ends without error."""
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = open(self.home / ".secrets.lock", "a")  # closed by the `with` below
        except OSError as exc:
            raise ConfigError(f"{self.describe()} cannot be written: {exc.strerror or exc}") from None
        import fcntl  # here, not at the top: the masker must import everywhere

        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._load()
            yield data
            self._save(data)

    def _save(self, data: dict[str, dict[str, Any]]) -> None:
        temp = _private_file(self.home, ".secrets.", json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))
        try:
            os.replace(temp, self.file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def read(self, path: str) -> dict[str, Any]:
        data = self._load().get(normalize_path(path))
        if data is None:
            raise self._missing_path(path)
        return dict(data)

    def write(self, path: str, key: str, value: Any) -> None:
        with self._locked() as data:
            data.setdefault(normalize_path(path), {})[key] = value

    def delete(self, path: str, key: str | None = None) -> None:
        with self._locked() as data:
            path = normalize_path(path)
            if path not in data:
                raise self._missing_path(path)
            if key is not None:
                if key not in data[path]:
                    raise NotFound(f"{self.describe()} has no key {key!r} at path {path!r}")
                del data[path][key]
            if key is None or not data[path]:
                del data[path]

    def list(self) -> dict[str, list[str]]:
        return {path: sorted(keys) for path, keys in sorted(self._load().items())}


class VaultSecrets(_Store):
    """Secrets in Vault's (or OpenBao's) KV version 2 engine, through hvac."""

    kind = "vault"

    def __init__(self, addr: str, token: str | None, mount: str = "secret", *, timeout: float = 10.0) -> None:
        try:
            import hvac
        except ImportError:
            raise ConfigError("VAULT_ADDR is set but hvac is not installed: pip install 'legion[vault]'") from None
        self.addr = addr
        self.mount = mount
        self.client = hvac.Client(url=addr, token=token, timeout=timeout)

    def describe(self) -> str:
        return f"Vault at {self.addr} (KV v2 mount {self.mount!r})"

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """hvac's and requests' exceptions as Legion errors, with what to do about them."""
        import hvac.exceptions as hx
        import requests

        try:
            yield
        except LegionError:
            raise
        except hx.InvalidPath:
            raise NotFound(f"{what}: {self.describe()} has nothing there (write it with `legion secret set`, "
                           f"or check LEGION_VAULT_MOUNT)") from None
        except (hx.Forbidden, hx.Unauthorized) as exc:
            raise ConfigError(f"{what}: {self.describe()} refused the request ({_first_line(exc)}): check VAULT_TOKEN "
                              f"and that its policy allows this path") from None
        except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL) as exc:
            raise ConfigError(f"VAULT_ADDR={self.addr!r} is not a URL such as http://127.0.0.1:8200 ({_first_line(exc)})") from None
        except (requests.exceptions.RequestException, hx.VaultDown, hx.BadGateway,
                hx.VaultNotInitialized, hx.InternalServerError, hx.RateLimitExceeded) as exc:
            raise ServiceUnavailable(f"{what}: {self.describe()} cannot be reached ({type(exc).__name__}): "
                                     f"check VAULT_ADDR and that Vault is up and unsealed") from None
        except hx.VaultError as exc:
            raise LegionError(f"{what}: {self.describe()} answered: {_first_line(exc)}") from None

    def _read(self, path: str) -> dict[str, Any] | None:
        """The secret's data, or None when there is none (never written, or its latest version deleted)."""
        import hvac.exceptions as hx

        with self._errors(f"reading path {path!r}"):
            try:
                answer = self.client.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=self.mount, raise_on_deleted_version=True)
            except hx.InvalidPath:
                return None
        data = (answer.get("data") or {}).get("data")
        return dict(data) if isinstance(data, dict) else None

    def read(self, path: str) -> dict[str, Any]:
        data = self._read(normalize_path(path))
        if data is None:
            raise self._missing_path(path)
        return data

    def write(self, path: str, key: str, value: Any) -> None:
        path = normalize_path(path)
        data = self._read(path) or {}
        data[key] = value
        with self._errors(f"writing path {path!r}"):
            self.client.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=self.mount)

    def delete(self, path: str, key: str | None = None) -> None:
        """Delete a key (a new version without it) or the path's latest version. Vault keeps the
        older versions: `bao kv undelete` or `vault kv rollback` bring a deletion back."""
        path = normalize_path(path)
        data = self._read(path)
        if data is None:
            raise self._missing_path(path)
        if key is not None and key not in data:
            raise NotFound(f"{self.describe()} has no key {key!r} at path {path!r}")
        with self._errors(f"deleting at path {path!r}"):
            if key is not None and len(data) > 1:
                del data[key]
                self.client.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=self.mount)
            else:
                self.client.secrets.kv.v2.delete_latest_version_of_secret(path=path, mount_point=self.mount)

    def list(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for path in self._paths(""):
            data = self._read(path)
            if data is not None:  # a path whose latest version is deleted is not listed
                found[path] = sorted(data)
        return dict(sorted(found.items()))

    def _paths(self, prefix: str) -> Iterator[str]:
        import hvac.exceptions as hx

        with self._errors(f"listing {prefix or 'the mount'}"):
            try:
                answer = self.client.secrets.kv.v2.list_secrets(path=prefix, mount_point=self.mount)
            except hx.InvalidPath:  # nothing stored under it
                return
        for name in (answer.get("data") or {}).get("keys") or []:
            if name.endswith("/"):
                yield from self._paths(prefix + name)
            else:
                yield prefix + name


def _private_file(folder: Path, prefix: str, text: str) -> str:
    """A new file in `folder` holding `text`, written through to disk, readable by its owner
    only (mkstemp makes it mode 0600 before anything is in it); its path, for the caller to
    move into place."""
    import tempfile  # here, not at the top: every command loads this module, few write files

    fd, temp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def default_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("LEGION_HOME") or Path.home() / ".legion").expanduser()


def store_from_env(env: Mapping[str, str] | None = None) -> SecretStore:
    """Vault when VAULT_ADDR is set (token VAULT_TOKEN, mount LEGION_VAULT_MOUNT or `secret`),
    else the embedded store in LEGION_HOME."""
    env = os.environ if env is None else env
    addr = env.get("VAULT_ADDR")
    if addr:
        return VaultSecrets(addr, env.get("VAULT_TOKEN") or None, env.get("LEGION_VAULT_MOUNT") or "secret")
    return EmbeddedSecrets(default_home(env))


# ---------------------------------------------------------------- resolving


def resolve_tokens(value: Any, lookup: Callable[[str], Any], binding: str) -> Any:
    """`value` with every token made for `binding` (the step run about to be called) replaced
    by `lookup(reference)`: a string that is one token becomes the value itself (any JSON
    value), a token inside a longer string its text (as Jinja would print it). Text that looks
    like a token but was not made for this step run (or not by `secret()` at all) is left as
    it is. Unchanged parts are the same objects, so arguments without tokens cost one walk
    and no copies."""
    if isinstance(value, str):
        if SECRET_OPEN not in value:
            return value
        whole = TOKEN.fullmatch(value)
        if whole is not None:
            reference = token_reference(whole.group(1), binding)
            return value if reference is None else lookup(reference)

        def swap(match: re.Match[str]) -> str:
            reference = token_reference(match.group(1), binding)
            return match.group(0) if reference is None else str(lookup(reference))  # unsigned: plain text

        return TOKEN.sub(swap, value)
    if isinstance(value, dict):
        changed: dict[str, Any] | None = None
        for key, item in value.items():
            new = resolve_tokens(item, lookup, binding)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, list):
        items = [resolve_tokens(item, lookup, binding) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


class Resolver:
    """Swaps the tokens in a step's arguments for the secrets, just before the call. The store
    is made on first need, so steps without secrets never touch it."""

    def __init__(self, store: SecretStore | None = None, *, factory: Callable[[], SecretStore] | None = None,
                 masker: Masker = MASKER) -> None:
        self._store = store
        self._factory = factory or store_from_env
        self._lock = threading.Lock()
        self.masker = masker

    @property
    def store(self) -> SecretStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._factory()
        return self._store

    def resolve(self, args: dict[str, Any], binding: str) -> dict[str, Any]:
        """The arguments of the step run `binding` (`legion.dsl.budget.step_binding`) with their
        secrets in; SecretError naming the first that cannot be read."""
        cache: dict[str, Any] = {}

        def lookup(reference: str) -> Any:
            if reference not in cache:
                cache[reference] = self.get(reference)
            return cache[reference]

        try:
            resolved: dict[str, Any] = resolve_tokens(args, lookup, binding)
        except SecretError:
            raise
        except LegionError as exc:  # the token key cannot be read: this step run fails, saying why
            raise SecretError(f"the secret references cannot be checked: {exc.message}") from None
        return resolved

    def get(self, reference: str) -> Any:
        try:
            value = self.store.get(reference)
        except ExpressionError as exc:
            raise SecretError(f"{exc.message}: fix the reference") from None
        except LegionError as exc:
            raise SecretError(f"secret {reference!r}: {exc.message}") from None
        except Exception as exc:  # a store's own bug still fails only this step run
            raise SecretError(f"secret {reference!r}: {type(exc).__name__}: {exc}") from None
        self.masker.remember(value)
        return value


# ---------------------------------------------------------------- settings


def resolve_setting(name: str, value: str | None, env: Mapping[str, str],
                    store: Callable[[], SecretStore] | None = None) -> str | None:
    """A setting's value with `env://NAME` read from the environment and `vault://path#key`
    from the secret store; the value itself otherwise. What is read is masked from then on."""
    if not value or not (value.startswith("env://") or value.startswith("vault://")):
        return value
    if value.startswith("env://"):
        var = value[len("env://"):]
        found = env.get(var) if var else None
        if not found:
            raise ConfigError(f"{name}={value}: the environment variable {var or '(none named)'} is not set: "
                              f"set it, or give {name} its value directly")
        MASKER.remember(found)
        return found
    reference = value[len("vault://"):]
    try:
        split_reference(reference)
    except ExpressionError:
        raise ConfigError(f"{name}={value}: write vault://path#key, such as vault://legion/db#url") from None
    try:
        secret = (store or (lambda: store_from_env(env)))().get(reference)
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(f"{name}={value}: {exc.message}") from None
    except LegionError as exc:
        raise ConfigError(f"{name}={value}: {exc.message}") from None
    if not isinstance(secret, str):
        raise ConfigError(f"{name}={value}: the secret is a {type(secret).__name__}, not a string")
    MASKER.remember(secret)
    return secret


# ---------------------------------------------------------------- the token key

KEY_FILE = "token.key"
JWT_KEY_FILE = "api-jwt.key"


def deployment_token_key(env: Mapping[str, str] | None = None) -> bytes:
    """The key that signs `secret()` references, the same in every process of a deployment:
    LEGION_SECRET_TOKEN_KEY (a value, `env://NAME` or `vault://path#key`), else the key in
    `$LEGION_HOME/token.key`, generated there by the first process that needs it."""
    return deployment_key("LEGION_SECRET_TOKEN_KEY", KEY_FILE, "the secret token key", env)


def api_jwt_key(env: Mapping[str, str] | None = None) -> bytes:
    """The key that signs and checks the API's JWTs: LEGION_API_JWT_KEY, else the key in
    `$LEGION_HOME/api-jwt.key`, generated there by the first process that needs it."""
    return deployment_key("LEGION_API_JWT_KEY", JWT_KEY_FILE, "the API's JWT key", env)


def deployment_key(variable: str, file: str, what: str, env: Mapping[str, str] | None = None) -> bytes:
    """A key every process of a deployment shares: `variable` (a value, `env://NAME` or
    `vault://path#key`), else `$LEGION_HOME/<file>`, generated there by the first process
    that needs it."""
    env = os.environ if env is None else env
    value = env.get(variable)
    if value:
        resolved = resolve_setting(variable, value, env) or ""
        # The variable's bytes as the environment holds them (surrogateescape): any key works.
        return resolved.encode("utf-8", "surrogateescape")
    return _home_key(default_home(env) / file, variable, what)


def _home_key(path: Path, variable: str, what: str) -> bytes:
    key = _read_key(path, variable, what)
    if key is not None:
        return key
    import secrets as random  # here, not at the top: only the first process of a home makes one

    home = path.parent
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole, then linked into place: two processes making the first key at once
        # both end up reading the one that was linked first.
        temp = _private_file(home, ".token.", random.token_hex(32) + "\n")
        try:
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)
        finally:
            os.unlink(temp)
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be made: {exc.strerror or exc}; check that "
                          f"LEGION_HOME can be written, or set {variable}") from None
    key = _read_key(path, variable, what)
    assert key is not None
    return key


def _read_key(path: Path, variable: str, what: str) -> bytes | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} cannot be read ({exc}): fix or remove it") from None
    if not text:
        raise ConfigError(f"{what} {path} is empty: remove it (a new one is made) or set {variable}")
    return text.encode("ascii")
