"""Protobuf request bodies (kubectl's typed `create` sends them) for the few kinds that need it."""
from __future__ import annotations

import base64
from typing import Any

from lab.kube.errors import ApiError, bad_request

PROTOBUF = "application/vnd.kubernetes.protobuf"


def _pb_fields(buf: bytes) -> list[tuple[int, Any]]:
    """(field number, value) of a protobuf message: varints as int, length-delimited as bytes."""
    out: list[tuple[int, Any]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    while i < len(buf):
        key = varint()
        num, wire = key >> 3, key & 7
        if wire == 0:
            out.append((num, varint()))
        elif wire == 2:
            n = varint()
            out.append((num, buf[i:i + n]))
            i += n
        elif wire == 1:
            out.append((num, buf[i:i + 8]))
            i += 8
        elif wire == 5:
            out.append((num, buf[i:i + 4]))
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


def _pb_map(entries: list[bytes], binary: bool = False) -> dict[str, str]:
    out = {}
    for e in entries:
        f = dict(_pb_fields(e))
        v = f.get(2, b"")
        out[f.get(1, b"").decode()] = base64.b64encode(v).decode() if binary else v.decode()
    return out


def _pb_meta(buf: bytes) -> dict[str, Any]:
    f = _pb_fields(buf)
    meta: dict[str, Any] = {}
    for num, key in ((1, "name"), (2, "generateName"), (3, "namespace")):
        vals = [v for n, v in f if n == num]
        if vals and vals[-1]:  # gogo-protobuf writes empty optional strings: empty means unset
            meta[key] = vals[-1].decode()
    for num, key in ((11, "labels"), (12, "annotations")):
        entries = [v for n, v in f if n == num]
        if entries:
            meta[key] = _pb_map(entries)
    fin = [v.decode() for n, v in f if n == 14]
    if fin:
        meta["finalizers"] = fin
    return meta


def decode_protobuf(raw: bytes) -> dict[str, Any]:
    """The k8s protobuf envelope (magic + runtime.Unknown) for Namespace, ConfigMap and Secret: what
    `kubectl create namespace|configmap|secret` send. Other kinds get 415 (use kubectl apply)."""
    if not raw.startswith(b"k8s\x00"):
        raise bad_request("protobuf body without the k8s envelope")
    unknown = dict(_pb_fields(raw[4:]))
    tm = dict(_pb_fields(unknown.get(1, b"")))
    api_version, kind = tm.get(1, b"").decode(), tm.get(2, b"").decode()
    f = _pb_fields(unknown.get(2, b""))
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    meta = [v for n, v in f if n == 1]
    obj["metadata"] = _pb_meta(meta[-1]) if meta else {}
    if (api_version, kind) == ("v1", "Namespace"):
        spec = [v for n, v in f if n == 2]
        fin = [v.decode() for n, v in _pb_fields(spec[-1])] if spec else []
        if fin:
            obj["spec"] = {"finalizers": fin}
    elif (api_version, kind) == ("v1", "ConfigMap"):
        for num, key, binary in ((2, "data", False), (3, "binaryData", True)):
            entries = [v for n, v in f if n == num]
            if entries:
                obj[key] = _pb_map(entries, binary)
        if any(n == 4 and v for n, v in f):
            obj["immutable"] = True
    elif (api_version, kind) == ("v1", "Secret"):
        for num, key, binary in ((2, "data", True), (4, "stringData", False)):
            entries = [v for n, v in f if n == num]
            if entries:
                obj[key] = _pb_map(entries, binary)
        types = [v.decode() for n, v in f if n == 3 and v]
        if types:
            obj["type"] = types[-1]
        if any(n == 5 and v for n, v in f):
            obj["immutable"] = True
    else:
        raise ApiError(415, "UnsupportedMediaType",
                       f"the lab API server decodes protobuf only for Namespace, ConfigMap and Secret, "
                       f"not {api_version}/{kind}: use kubectl apply")
    return obj
