"""What a user saw, as one class: `aws`, `maintenance`, `azure` or `error`.

The probe classifies every response with these rules; RTO and downtime are computed from the
classes, so the rules are the definition of "the site is up". Core module: stdlib + pydantic only.

Semantics (all documented here because the drill report depends on them):

* No response (status 0, or anything below 100) or any 5xx is `error` *before* rules are tried:
  a 503 whose body says "maintenance" is an outage, not the maintenance page.
* Otherwise the rules are tried in order and the FIRST rule whose conditions all hold wins;
  no rule matching (a 404, a 200 with an unknown body, ...) is `error`.
* Only the first 64 KiB (65,536 characters) of the body is examined, so a huge body costs the
  same as a normal page and a marker far down a page cannot change its class.

Rule order matters. Put the most specific rule first: `DEFAULT_RULES` tests the exact
PetClinic page title before the generic maintenance keywords, because a PetClinic page could
legitimately contain the word "maintenance" (a visit description, say) while the maintenance
page never carries PetClinic's <title>. PetClinic served from Azure has the same title, so the
defaults call every PetClinic page `aws`; a drill that must tell the two apart supplies an
`azure` rule (typically a response-header rule, e.g. a header the Azure gateway adds) placed
BEFORE the `aws` rule.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, RootModel, field_validator

ClassName = Literal["aws", "maintenance", "azure"]
CLASSES: tuple[str, ...] = ("aws", "maintenance", "azure", "error")
ERROR = "error"
BODY_LIMIT = 64 * 1024  # characters of body examined by classify()

PETCLINIC_TITLE = "PetClinic :: a Spring Framework demonstration"
MAINTENANCE_REGEX = r"(?i)maintenance|temporarily unavailable|점검"


def _compile(rx: str) -> re.Pattern[str]:
    try:
        return re.compile(rx)
    except re.error as e:  # re.error is not a ValueError: pydantic would not report it
        raise ValueError(f"invalid regex {rx!r}: {e}") from None


class ClassRule(BaseModel):
    """One class and the conditions (AND-ed) a response must meet to belong to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassName
    # Accepted statuses; None = any status (5xx/0 never reach the rules anyway).
    status: list[int] | None = Field(default_factory=lambda: [200])
    # re.search on the first BODY_LIMIT characters of the body; None = body not checked.
    body_regex: str | None = None
    # Header name (case-insensitive) -> regex searched in its value; a missing header fails.
    header: dict[str, str] | None = None

    _body_re: re.Pattern[str] | None = PrivateAttr(default=None)
    _header_res: tuple[tuple[str, re.Pattern[str]], ...] = PrivateAttr(default=())

    @field_validator("body_regex")
    @classmethod
    def _body_regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            _compile(v)  # fail at load time, not on the first request of a drill
        return v

    @field_validator("header")
    @classmethod
    def _header_regexes_compile(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None:
            for rx in v.values():
                _compile(rx)
        return v

    def model_post_init(self, __context: Any) -> None:
        self._body_re = re.compile(self.body_regex) if self.body_regex is not None else None
        self._header_res = tuple((k.lower(), re.compile(rx)) for k, rx in (self.header or {}).items())

    def matches(self, status: int, headers: Mapping[str, str], body: str) -> bool:
        """True when every condition of this rule holds. `headers` keys must be lower-case."""
        if self.status is not None and status not in self.status:
            return False
        if self._body_re is not None and not self._body_re.search(body):
            return False
        for name, rx in self._header_res:
            value = headers.get(name)
            if value is None or not rx.search(value):
                return False
        return True


class ClassRules(RootModel[list[ClassRule]]):
    """An ordered list of rules (first match wins), as loaded from JSON/YAML config."""

    def __iter__(self) -> Iterator[ClassRule]:  # type: ignore[override]  # the rules, not pydantic's (field, value) pairs
        return iter(self.root)

    def __len__(self) -> int:
        return len(self.root)

    def __getitem__(self, i: int) -> ClassRule:
        return self.root[i]


DEFAULT_RULES: tuple[ClassRule, ...] = (
    # Most specific first: the exact PetClinic <title> (see the module docstring).
    ClassRule(name="aws", status=[200], body_regex=re.escape(PETCLINIC_TITLE)),
    ClassRule(name="maintenance", status=[200], body_regex=MAINTENANCE_REGEX),
)


def parse_rules(rules: Iterable[ClassRule | Mapping[str, Any]] | None) -> tuple[ClassRule, ...]:
    """Validate rule dicts (from config) into ClassRules; None gives DEFAULT_RULES."""
    if rules is None:
        return DEFAULT_RULES
    return tuple(r if isinstance(r, ClassRule) else ClassRule.model_validate(r) for r in rules)


def is_failure_status(status: int) -> bool:
    """No response (0 / not HTTP) or a server error: `error` whatever the body says."""
    return status < 100 or status >= 500


def classify(
    status: int,
    headers: Mapping[str, str],
    body: str,
    rules: Sequence[ClassRule] = DEFAULT_RULES,
) -> str:
    """The class of one response: a rule's name, or `error`."""
    if is_failure_status(status):
        return ERROR
    body = body[:BODY_LIMIT] if body else ""
    lower_headers = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    for rule in rules:
        if rule.matches(status, lower_headers, body):
            return rule.name
    return ERROR
