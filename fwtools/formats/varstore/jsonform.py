"""Variable stores as JSON: fwtools' own lossless form, and the forms of virt-firmware and
python-uefivars.

fwtools' form (``"schema": "fwtools.fw-vars/1"``)::

    {"schema": "fwtools.fw-vars/1", "format": "edk2-raw" | "qcow2" | "json",
     "layout": <store layout name or null>, "source": {...} | null,
     "variables": [{"name", "guid", "guid_name", "attributes" (int), "attribute_names",
                    "size", "data" (hex), "timestamp" (ISO 8601 or null),
                    "timestamp_raw" (hex of the 16-byte EFI_TIME, or null),
                    "monotonic_count", "pubkey_index", "state", "offset",
                    "decoded" (when known)}]}

Reading it back gives variables equal to the ones written, every EFI_TIME field (Pad1,
Nanosecond, TimeZone, Daylight, Pad2) included via ``timestamp_raw``. ``timestamp`` is only
for people (null for a missing or all-zero stamp); without ``timestamp_raw`` it is read with
:func:`~fwtools._base.efitime.parse_time`. ``guid_name``, ``attribute_names``, ``size`` and
``decoded`` are views: ``size`` must match ``data`` when present, the others are ignored.
``state`` and ``offset`` say which record the variable was read from (informational; a
writer lays records out anew).

virt-firmware (``virt/firmware/efi/efijson.py``)::

    {"version": 2, "variables": [{"name", "guid", "attr", "data" (hex), "time" (hex)?}]}

python-uefivars (``pyuefivars/json.py``, ``varstore.py``): the same with ``timestamp``
instead of ``time`` and an optional ``digest`` (the signer digest it moves out of certdb;
it is not needed to rebuild a store and is ignored here: edk2 re-creates certdb at boot), or
a bare list of such variables (its version 1). Both tools time-stamp only variables that
have a time. Which form a document is is decided by its keys; all three are keyed by
(vendor GUID, name): the same name under two GUIDs is two variables (virt-firmware's own
reader keeps only one of them), the same (GUID, name) twice is an error.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from fwtools._base.efitime import EfiTime, parse_time
from fwtools.errors import FwError, ParseError
from fwtools.formats.efi import guids
from fwtools.formats.efi.authvar import attribute_names

if TYPE_CHECKING:
    from fwtools.formats.varstore.model import Variable

SCHEMA: Final = "fwtools.fw-vars/1"
SCHEMA_PREFIX: Final = "fwtools.fw-vars/"
VIRT_FIRMWARE_VERSION: Final = 2
STATE_ADDED: Final = 0x3F
MAX_U32: Final = 0xFFFFFFFF
MAX_U64: Final = 0xFFFFFFFFFFFFFFFF


# -- writing -----------------------------------------------------------------------------


def _variable_json(var: Variable, decode: bool) -> dict[str, Any]:
    stamp = var.timestamp
    out: dict[str, Any] = {
        "name": var.name,
        "guid": str(var.guid),
        "guid_name": guids.guid_name(var.guid),
        "attributes": var.attributes,
        "attribute_names": attribute_names(var.attributes),
        "size": len(var.data),
        "data": bytes(var.data).hex(),
        "timestamp": None if stamp is None or stamp.is_zero else stamp.isoformat(),
        "timestamp_raw": None if stamp is None else stamp.to_bytes().hex(),
        "monotonic_count": var.monotonic_count,
        "pubkey_index": var.pubkey_index,
        "state": var.state,
        "offset": var.offset,
    }
    if decode:
        from fwtools.formats.varstore.decode import decode_variable

        decoded = decode_variable(var.name, var.guid, var.data)
        out["decoded"] = None if decoded is None else _plain(decoded)
    return out


def _plain(value: Any) -> Any:
    """Records, dataclasses, tuples, bytes (hex) and UUIDs as JSON values (the decoded views
    hold nothing else)."""
    from fwtools._base.record import Record

    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Record):
        return {f: _plain(getattr(value, f)) for f in value._fields}
    if hasattr(type(value), "__dataclass_fields__"):  # a dataclass instance
        import dataclasses  # only then: it costs about a millisecond to import

        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def variables_to_json(
    variables: Iterable[Variable],
    *,
    format: str,
    source: dict[str, Any] | None = None,
    decode: bool = True,
) -> dict[str, Any]:
    """The fwtools JSON document of ``variables`` (in the given order).

    ``format`` is the container they were read from (``edk2-raw``, ``qcow2``, ``json``);
    ``source`` optional facts about it (path, ``layout`` name, ...), whose ``layout`` is
    also put at the top level. ``decode`` adds each variable's decoded view.
    """
    return {
        "schema": SCHEMA,
        "format": format,
        "layout": (source or {}).get("layout"),
        "source": source,
        "variables": [_variable_json(v, decode) for v in variables],
    }


# -- reading -----------------------------------------------------------------------------


def _fail(path: str, message: str) -> ParseError:
    return ParseError(message, structure=path)


def _get_int(item: dict[str, Any], key: str, path: str, maximum: int, default: int | None) -> int:
    if key not in item:
        if default is None:
            raise _fail(f"{path}.{key}", "missing")
        return default
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{path}.{key}", f"must be an integer, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise _fail(f"{path}.{key}", f"{value} is outside 0..{maximum:#x}")
    return value


def _get_hex(item: dict[str, Any], key: str, path: str) -> bytes:
    value = item.get(key)
    if not isinstance(value, str):
        what = "missing" if key not in item else f"must be a hex string, not {type(value).__name__}"
        raise _fail(f"{path}.{key}", what)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _fail(f"{path}.{key}", f"not hex: {value[:40]!r}") from None


def _get_name(item: dict[str, Any], path: str) -> str:
    name = item.get("name")
    if not isinstance(name, str):
        raise _fail(f"{path}.name", "missing" if "name" not in item else "must be a string")
    if not name:
        raise _fail(f"{path}.name", "is empty (a variable needs a name)")
    if "\0" in name:
        raise _fail(f"{path}.name", "contains NUL")
    if any(ord(c) > 0xFFFF for c in name):
        raise _fail(f"{path}.name", f"{name!r} has characters UCS-2 cannot hold")
    return name


def _get_guid(item: dict[str, Any], path: str) -> uuid.UUID:
    value = item.get("guid")
    if not isinstance(value, str):
        raise _fail(f"{path}.guid", "missing" if "guid" not in item else "must be a string")
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise _fail(f"{path}.guid", f"not a GUID: {value[:60]!r}") from None


def _get_time(item: dict[str, Any], key: str, path: str) -> EfiTime | None:
    if item.get(key) is None:
        return None
    raw = _get_hex(item, key, path)
    if len(raw) != EfiTime.SIZE:
        raise _fail(f"{path}.{key}", f"an EFI_TIME is {EfiTime.SIZE} bytes, not {len(raw)}")
    return EfiTime.from_bytes(raw)


def _ours(item: dict[str, Any], path: str) -> dict[str, Any]:
    data = _get_hex(item, "data", path)
    if "size" in item:
        size = _get_int(item, "size", path, MAX_U64, None)
        if size != len(data):
            raise _fail(f"{path}.size", f"{size} differs from the {len(data)} bytes of data")
    timestamp = _get_time(item, "timestamp_raw", path)
    if timestamp is None and item.get("timestamp") is not None:
        text = item["timestamp"]
        if not isinstance(text, str):
            raise _fail(f"{path}.timestamp", "must be a string")
        try:
            timestamp = parse_time(text)
        except FwError as exc:
            raise _fail(f"{path}.timestamp", str(exc)) from None
    offset = item.get("offset")
    if offset is not None and (isinstance(offset, bool) or not isinstance(offset, int)
                               or offset < 0):
        raise _fail(f"{path}.offset", "must be a non-negative integer or null")
    return {
        "attributes": _get_int(item, "attributes", path, MAX_U32, None),
        "data": data,
        "timestamp": timestamp,
        "monotonic_count": _get_int(item, "monotonic_count", path, MAX_U64, 0),
        "pubkey_index": _get_int(item, "pubkey_index", path, MAX_U32, 0),
        "state": _get_int(item, "state", path, 0xFF, STATE_ADDED),
        "offset": offset,
    }


def _v2(item: dict[str, Any], path: str) -> dict[str, Any]:
    # virt-firmware writes "time", python-uefivars "timestamp"; both only when set.
    timestamp = _get_time(item, "time", path)
    if timestamp is None:
        timestamp = _get_time(item, "timestamp", path)
    return {
        "attributes": _get_int(item, "attr", path, MAX_U32, None),
        "data": _get_hex(item, "data", path),
        "timestamp": timestamp,
    }


def _load(doc: dict[str, Any] | list[Any] | str | bytes) -> Any:
    if isinstance(doc, bytes | bytearray):
        try:
            doc = bytes(doc).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ParseError("not UTF-8 text", structure="JSON", offset=exc.start) from None
    if isinstance(doc, str):
        try:
            return json.loads(doc)
        except json.JSONDecodeError as exc:
            raise ParseError(
                f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                structure="JSON",
                offset=exc.pos,
            ) from None
        except RecursionError:
            raise ParseError("JSON nested too deeply", structure="JSON") from None
        except ValueError as exc:
            # An integer beyond int()'s digit limit (sys.get_int_max_str_digits) raises a
            # plain ValueError from json.loads (issue 8; testdata/fuzz/json/long-integer.bin).
            raise ParseError(f"unusable JSON: {exc}", structure="JSON") from None
    return doc


def detect_format(doc: dict[str, Any] | list[Any] | str | bytes) -> str:
    """Which JSON form a document is: ``fwtools``, ``virt-firmware``, ``python-uefivars``
    (python-uefivars' version 1 or a version 2 document with its ``timestamp``/``digest``
    keys) or ``v2`` (a version 2 document that either tool could have written: without
    timestamps they are the same). Raises :class:`ParseError` for anything else."""
    return _detect(_load(doc))


def _detect(doc: Any) -> str:
    if isinstance(doc, list):
        return "python-uefivars"
    if not isinstance(doc, dict):
        raise ParseError(
            f"a variable store document is a JSON object, not {type(doc).__name__}",
            structure="JSON",
        )
    schema = doc.get("schema")
    if schema is not None:
        if schema != SCHEMA:
            what = "an unsupported version of" if str(schema).startswith(SCHEMA_PREFIX) else "not"
            raise _fail("schema", f"{schema!r} is {what} {SCHEMA}")
        return "fwtools"
    if "variables" not in doc:
        raise ParseError(
            f"no 'schema' ({SCHEMA}) and no 'variables': not a variable store document",
            structure="JSON",
        )
    version = doc.get("version", VIRT_FIRMWARE_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 2:
        raise _fail("version", f"{version!r} is not 1 or 2 (virt-firmware/python-uefivars)")
    items = doc["variables"]
    if isinstance(items, list):
        keys = {k for item in items if isinstance(item, dict) for k in item}
        if "time" in keys:
            return "virt-firmware"
        if keys & {"timestamp", "digest"}:
            return "python-uefivars"
        if "attributes" in keys and "attr" not in keys:
            # Our variable form without the schema line (hand-written): read it as ours.
            return "fwtools"
    return "v2"


def variables_from_json(doc: dict[str, Any] | list[Any] | str | bytes) -> list[Variable]:
    """Variables from a JSON document in any of the three forms (see the module text),
    in document order.

    Raises :class:`ParseError` whose ``structure`` is the JSON path of the problem
    (``variables[3].guid``) for malformed input, and for a (GUID, name) that appears twice.
    """
    from fwtools.formats.varstore.model import Variable

    loaded = _load(doc)
    form = _detect(loaded)
    items = loaded if isinstance(loaded, list) else loaded.get("variables")
    if not isinstance(items, list):
        raise _fail("variables", "must be a list")
    out: list[Variable] = []
    seen: dict[tuple[uuid.UUID, str], int] = {}
    for index, item in enumerate(items):
        path = f"variables[{index}]"
        if not isinstance(item, dict):
            raise _fail(path, f"must be an object, not {type(item).__name__}")
        name = _get_name(item, path)
        guid = _get_guid(item, path)
        key = (guid, name)
        if key in seen:
            raise _fail(path, f"{name} ({guid}) is already variables[{seen[key]}]")
        seen[key] = index
        fields = _ours(item, path) if form == "fwtools" else _v2(item, path)
        out.append(Variable(name, guid, **fields))
    return out


def variables_to_v2_json(variables: Iterable[Variable]) -> dict[str, Any]:
    """virt-firmware's JSON (version 2) of ``variables``: readable by virt-fw-vars
    (``--set-json``) and python-uefivars; loses MonotonicCount, PubKeyIndex, and every
    EFI_TIME of an all-zero stamp (written as no time at all)."""
    out = []
    for var in variables:
        item: dict[str, Any] = {
            "name": var.name,
            "guid": str(var.guid),
            "attr": var.attributes,
            "data": bytes(var.data).hex(),
        }
        if var.timestamp is not None and not var.timestamp.is_zero:
            item["time"] = var.timestamp.to_bytes().hex()
        out.append(item)
    return {"version": VIRT_FIRMWARE_VERSION, "variables": out}


__all__ = [
    "SCHEMA",
    "detect_format",
    "variables_from_json",
    "variables_to_json",
    "variables_to_v2_json",
]
