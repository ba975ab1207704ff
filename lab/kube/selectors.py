"""Label and field selectors, parsed and matched as the API server does (errors are 400s)."""
from __future__ import annotations

import re
from typing import Any

from lab.kube.errors import bad_request
from lab.kube.resources import Resource

LABEL_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_TERM = re.compile(rf"^\s*({LABEL_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def split_terms(text: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


class Selector:
    """A label selector: equality (`a=b`, `a==b`, `a!=b`) and set-based (`a in (x,y)`, `a notin (..)`, `a`, `!a`)."""

    def __init__(self, reqs: list[tuple[str, str, tuple[str, ...]]] | None = None) -> None:
        self.reqs = reqs or []

    @classmethod
    def parse(cls, text: str | None) -> Selector:
        reqs: list[tuple[str, str, tuple[str, ...]]] = []
        for term in split_terms(text or ""):
            m = _SET_TERM.match(term)
            if m:
                reqs.append((m.group(1), m.group(3), tuple(v.strip() for v in m.group(4).split(",") if v.strip())))
            elif term.startswith("!"):
                reqs.append((cls._key(term[1:].strip(), text), "!", ()))
            elif "!=" in term:
                k, v = term.split("!=", 1)
                reqs.append((cls._key(k.strip(), text), "!=", (cls._value(v.strip(), text),)))
            elif "==" in term or "=" in term:
                k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
                reqs.append((cls._key(k.strip(), text), "=", (cls._value(v.strip(), text),)))
            else:
                reqs.append((cls._key(term, text), "exists", ()))
        return cls(reqs)

    @staticmethod
    def _key(k: str, text: str | None) -> str:
        if not re.fullmatch(LABEL_KEY, k):
            raise bad_request(f"unable to parse requirement: invalid label key {k!r} in selector {text!r}")
        return k

    @staticmethod
    def _value(v: str, text: str | None) -> str:
        if len(v) > 63 or not LABEL_VALUE.match(v):
            raise bad_request(f"unable to parse requirement: invalid label value {v!r} in selector {text!r}")
        return v

    @classmethod
    def from_label_selector(cls, sel: dict[str, Any] | None) -> Selector:
        """metav1.LabelSelector (matchLabels + matchExpressions), as in a Deployment's spec.selector."""
        sel = sel or {}
        reqs: list[tuple[str, str, tuple[str, ...]]] = [(k, "=", (str(v),)) for k, v in (sel.get("matchLabels") or {}).items()]
        ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
        for e in sel.get("matchExpressions") or []:
            reqs.append((e.get("key", ""), ops.get(e.get("operator", ""), "in"), tuple(e.get("values") or ())))
        return cls(reqs)

    @classmethod
    def from_map(cls, labels: dict[str, str] | None) -> Selector:
        return cls([(k, "=", (str(v),)) for k, v in (labels or {}).items()])

    def empty(self) -> bool:
        return not self.reqs

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        for key, op, values in self.reqs:
            have = key in labels
            val = labels.get(key)
            if op == "=" and val != values[0]:
                return False
            if op == "!=" and have and val == values[0]:
                return False
            if op == "in" and (not have or val not in values):
                return False
            if op == "notin" and have and val in values:
                return False
            if op == "exists" and not have:
                return False
            if op == "!" and have:
                return False
        return True

    def __str__(self) -> str:
        parts = []
        for key, op, values in self.reqs:
            if op in ("=", "!="):
                parts.append(f"{key}{op}{values[0]}")
            elif op in ("in", "notin"):
                parts.append(f"{key} {op} ({','.join(values)})")
            else:
                parts.append(key if op == "exists" else f"!{key}")
        return ",".join(parts)


FIELD_SELECTORS: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.phase", "status.podIP"),
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "nodes": ("spec.unschedulable",),
}


def _dig(obj: dict[str, Any], dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur).lower() if isinstance(cur, bool) else str(cur)


class FieldSelector:
    def __init__(self, res: Resource, text: str | None) -> None:
        self.reqs: list[tuple[str, bool, str]] = []
        allowed = ("metadata.name", "metadata.namespace") + FIELD_SELECTORS.get(res.plural, ())
        for term in split_terms(text or ""):
            neg = "!=" in term
            k, v = (term.split("!=", 1) if neg else
                    term.split("==", 1) if "==" in term else term.split("=", 1) if "=" in term else (term, None))
            if v is None:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
            k = k.strip()
            if k not in allowed:
                raise bad_request(f'field label not supported: {k}')
            self.reqs.append((k, neg, v.strip()))

    def matches(self, obj: dict[str, Any]) -> bool:
        return all((_dig(obj, k) != v) if neg else (_dig(obj, k) == v) for k, neg, v in self.reqs)
