"""Writing a store image the way edk2's ``Reclaim`` leaves one, and formatting a blank one.

References (tianocore/edk2): ``MdeModulePkg/Universal/Variable/RuntimeDxe/Variable.c``
(``Reclaim``: the live variables, compacted, all State 0x3F), ``VariableFormat.h`` (the
record and store headers), ``UpdateWorkingBlock.c`` (``InitWorkSpaceHeader``: the FTW
working block the driver accepts), ``OvmfPkg/Include/Fdf/VarStore.fdf.inc`` and
``ArmVirtPkg/VarStore.fdf.inc`` (the FV header of each build's template).

An image written here has: the FV header kept (or the build's template header), checksum
recomputed; a fresh, healthy store header; the records 4-byte aligned with 0xFF pads; free
space 0xFF; the event log 0xFF; the FTW working block pristine (its header, then 0xFF); the
spare 0xFF; whatever follows FvLength (zeros, firmware code) copied unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from fwtools.errors import UsageError
from fwtools.formats.varstore import layout as lay
from fwtools.formats.varstore.errors import StoreFullError
from fwtools.formats.varstore.model import encode_name
from fwtools.formats.varstore.setvar import normalised

if TYPE_CHECKING:
    from fwtools.formats.varstore.layout import StoreLayout
    from fwtools.formats.varstore.model import Variable

_ZERO_TIME_BYTES: Final = bytes(lay.AUTH_HEADER_LAYOUT.field_size("timestamp"))
_NV_GUID_BYTES: Final = lay.SYSTEM_NV_DATA_FV_GUID.bytes_le


def encode_record(variable: Variable, authenticated: bool) -> bytes:
    """One record, State 0x3F, padded with 0xFF to the next 4-byte boundary."""
    name = encode_name(variable.name)
    guid = variable.guid.bytes_le
    if authenticated:
        stamp = variable.timestamp.to_bytes() if variable.timestamp else _ZERO_TIME_BYTES
        header = lay.AUTH_HEADER_LAYOUT.pack(
            lay.START_ID,
            lay.STATE_ADDED,
            0,
            variable.attributes,
            variable.monotonic_count,
            stamp,
            variable.pubkey_index,
            len(name),
            len(variable.data),
            guid,
        )
    else:
        header = lay.NORMAL_HEADER_LAYOUT.pack(
            lay.START_ID, lay.STATE_ADDED, 0, variable.attributes, len(name),
            len(variable.data), guid,
        )  # fmt: skip
    size = len(header) + len(name) + len(variable.data)
    return header + name + variable.data + b"\xff" * (lay.header_align(size) - size)


def store_header(layout: StoreLayout, authenticated: bool) -> bytes:
    """A formatted, healthy VARIABLE_STORE_HEADER of the layout's Size."""
    signature = lay.AUTHENTICATED_VARIABLE_GUID if authenticated else lay.VARIABLE_GUID
    return lay.STORE_HEADER_LAYOUT.pack(
        signature.bytes_le,
        layout.store_size,
        lay.VARIABLE_STORE_FORMATTED,
        lay.VARIABLE_STORE_HEALTHY,
        0,
        0,
    )


def fv_header_template(layout: StoreLayout) -> bytes:
    """The FV header of the build's fdf template (checksum included)."""
    entry = lay.BLOCK_MAP_ENTRY_LAYOUT
    header = bytearray(
        lay.FV_HEADER_LAYOUT.pack(
            bytes(lay.FV_HEADER_LAYOUT.field_size("zero_vector")),
            _NV_GUID_BYTES,
            layout.fv_length,
            lay.FV_SIGNATURE,
            layout.fv_attributes,
            lay.FV_HEADER_SIZE + entry.size * (len(layout.block_map) + 1),
            0,
            0,
            0,
            lay.FV_REVISION,
        )
    )
    for count, length in (*layout.block_map, (0, 0)):
        header += entry.pack(count, length)
    if len(header) != layout.store_offset:
        raise UsageError(
            f"layout {layout.name}: a {len(layout.block_map)}-entry block map gives an FV "
            f"header of {len(header):#x} bytes, but the store header is at "
            f"{layout.store_offset:#x}"
        )
    lay.set_fv_checksum(header)
    return bytes(header)


def _ftw_working_area(region: range) -> bytes:
    queue = len(region) - lay.FTW_WORKING_HEADER_SIZE
    return lay.ftw_working_header(queue) + b"\xff" * queue


def build_blank(layout: StoreLayout, authenticated: bool) -> bytes:
    """A freshly formatted, empty image of ``layout``: the bytes of the build's template."""
    head = fv_header_template(layout) + store_header(layout, authenticated)
    out = [head, b"\xff" * (layout.store_end - len(head))]
    pos = layout.store_end
    for region in (layout.event_log, layout.ftw_working, layout.ftw_spare):
        if region is None:
            continue
        if region.start < pos or region.stop > layout.fv_length:
            raise UsageError(f"layout {layout.name}: regions overlap or leave the FV")
        out.append(b"\xff" * (region.start - pos))
        if region is layout.ftw_working:
            out.append(_ftw_working_area(region))
        else:
            out.append(b"\xff" * len(region))
        pos = region.stop
    out.append(b"\xff" * (layout.fv_length - pos))
    out.append(bytes(layout.total_size - layout.fv_length))
    return b"".join(out)


def compose(
    data: bytes,
    fv_header_length: int,
    layout: StoreLayout,
    authenticated: bool,
    variables: list[Variable],
    *,
    template_fv_header: bool = False,
) -> bytes:
    """The compacted image of ``variables`` (in the order given) over the original image
    ``data``, the same size as it. The FV header (``fv_header_length`` bytes) is kept unless
    the layout puts the store elsewhere or ``template_fv_header`` asks for the build's.
    Variables without a name (read from NameSize-2 records, which no SetVariable creates)
    are dropped. Raises :class:`StoreFullError` when the records do not fit."""
    parts: list[bytes] = []
    used = 0
    for variable in variables:
        if not variable.name:
            continue
        record = encode_record(normalised(variable, authenticated), authenticated)
        parts.append(record)
        used += len(record)
    if used > layout.capacity:
        raise StoreFullError(used, layout.capacity, f"{len(variables)} variables")
    fv_bytes = bytearray(data[:fv_header_length])
    if layout.store_offset != fv_header_length or template_fv_header:
        fv_bytes = bytearray(fv_header_template(layout))
    lay.set_fv_checksum(fv_bytes)
    start = layout.records_offset
    head = bytes(fv_bytes) + store_header(layout, authenticated)
    out: list[bytes | memoryview] = [head, b"\xff" * (start - len(head)), *parts]
    out.append(b"\xff" * (layout.store_end - start - used))
    out.extend(_nv_tail(data, layout))
    if layout.total_size > layout.fv_length:
        # A view, not a slice: the 63 MiB ArmVirt trailer is copied once, by join.
        out.append(memoryview(data)[layout.fv_length : layout.total_size])
    result = b"".join(out)
    assert len(result) == len(data)
    return result


def _nv_tail(data: bytes, layout: StoreLayout) -> list[bytes]:
    """[store_end, fv_length): event log 0xFF, pristine FTW, spare 0xFF (or the original
    bytes where a custom image has no FTW working block)."""
    if layout.ftw_working is None:
        return [data[layout.store_end : layout.fv_length]]
    out: list[bytes] = []
    pos = layout.store_end
    regions = [r for r in (layout.event_log, layout.ftw_working, layout.ftw_spare) if r]
    for region in regions:
        if region.start > pos:
            out.append(data[pos : region.start])
        if region is layout.ftw_working:
            out.append(_ftw_working_area(region))
        else:
            out.append(b"\xff" * len(region))
        pos = region.stop
    if pos < layout.fv_length:
        out.append(data[pos : layout.fv_length])
    return out


__all__ = ["build_blank", "compose", "encode_record", "fv_header_template", "store_header"]
