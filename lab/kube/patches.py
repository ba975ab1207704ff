"""PATCH bodies in all four content types: strategic merge, JSON merge (RFC 7386), JSON patch
(RFC 6902) and server-side apply (approximated by a strategic merge)."""
from __future__ import annotations

import copy
import json
from typing import Any

_DELETE = object()


def _merge_key(path: list[str], field: str) -> str | None:
    """patchMergeKey of the built-in types' lists that strategic merge patch merges item by item."""
    if field == "ports":
        return "containerPort" if path and path[-1] in ("containers", "initContainers", "ephemeralContainers") else "port"
    return {
        "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
        "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name",
        "conditions": "type", "ownerReferences": "uid", "hostAliases": "ip", "resourceClaims": "name",
        "topologySpreadConstraints": "topologyKey", "addresses": "type",
    }.get(field)


_PRIMITIVE_SETS = {"finalizers"}  # lists of scalars merged as sets


def _strip_directives(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v if not (isinstance(x, dict) and x.get("$patch") == "delete")]
    return v


def strategic_merge(orig: Any, patch: Any, path: list[str] | None = None) -> Any:
    """Strategic merge patch over the built-in types: merge keys, $patch, $retainKeys,
    $setElementOrder and $deleteFromPrimitiveList (what kubectl apply and `kubectl patch` send)."""
    path = path or []
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return _DELETE
    result = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    orders: dict[str, list[Any]] = {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
        elif k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            result[field] = [x for x in result.get(field) or [] if x not in (v or [])]
        elif k.startswith("$"):
            continue
        elif v is None:
            result.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge(result.get(k), v, path + [k])
            if merged is _DELETE:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list):
            key = _merge_key(path, k)
            if key and all(isinstance(x, dict) for x in v):
                result[k] = _merge_list(result.get(k) or [], v, key, path + [k])
            elif k in _PRIMITIVE_SETS:
                result[k] = list(result.get(k) or []) + [x for x in v if x not in (result.get(k) or [])]
            else:
                result[k] = _strip_directives(v)
        else:
            result[k] = v
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        for k in list(result):
            if k not in retain:
                del result[k]
    for field, order in orders.items():
        result[field] = _reorder(result.get(field) or [], order, _merge_key(path, field))
    return result


def _merge_list(orig: list[Any], patch: list[dict[str, Any]], key: str, path: list[str]) -> list[Any]:
    if any(x.get("$patch") == "replace" for x in patch):
        return [_strip_directives(x) for x in patch if x.get("$patch") != "replace"]
    result = copy.deepcopy(orig)
    for item in patch:
        idx = next((i for i, o in enumerate(result) if isinstance(o, dict) and key in item and o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            result = [o for o in result if not (isinstance(o, dict) and o.get(key) == item.get(key))]
        elif idx is None:
            result.append(_strip_directives(item))
        else:
            result[idx] = strategic_merge(result[idx], item, path)
    return result


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(x: Any) -> Any:
        return x.get(key) if key and isinstance(x, dict) else json.dumps(x, sort_keys=True)

    want = [ident(o) for o in order]
    ranked = sorted(items, key=lambda x: want.index(ident(x)) if ident(x) in want else len(want))
    return ranked


def merge_patch(orig: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _pointer(doc: Any, ptr: str) -> tuple[Any, str | int]:
    if not ptr.startswith("/"):
        raise ValueError(f"invalid JSON pointer {ptr!r}")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ptr[1:].split("/")]
    cur = doc
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    last = parts[-1]
    return cur, (last if isinstance(cur, dict) or last == "-" else int(last))


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise ValueError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        if kind in ("move", "copy"):
            src, skey = _pointer(doc, op["from"])
            value = copy.deepcopy(src[skey])
            if kind == "move":
                del src[skey]
            op = {"op": "add", "path": op["path"], "value": value}
            kind = "add"
        parent, key = _pointer(doc, op["path"])
        if kind == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if key == "-" else int(key), copy.deepcopy(op["value"]))
            else:
                parent[key] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[key]
        elif kind == "replace":
            if isinstance(parent, dict) and key not in parent:
                raise ValueError(f"replace operation does not apply: doc is missing path: {op['path']}")
            parent[key] = copy.deepcopy(op["value"])
        elif kind == "test":
            if parent[key] != op.get("value"):
                raise ValueError(f"testing value {op['path']} failed")
        else:
            raise ValueError(f"unexpected kind of operation {kind!r}")
    return doc


PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
