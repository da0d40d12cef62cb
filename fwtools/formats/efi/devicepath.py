"""EFI device paths (UEFI 2.10 §10.3): parse, print as edk2 does, build.

References:
    UEFI 2.10 §10.2-10.3 (EFI_DEVICE_PATH_PROTOCOL and every node), §10.6 (text form);
    edk2 ``MdePkg/Include/Protocol/DevicePath.h`` (the node structures) and
    ``MdePkg/Library/UefiDevicePathLib/DevicePathToText.c`` (the text, read at
    microsoft/mu_basecore 413351cc, which carries upstream's 2023 AcpiEx rules), including
    ``DevPathToTextNodeGeneric`` for nodes it has no printer for.

A device path is a sequence of nodes, each ``Type u8, SubType u8, Length u16`` (Length
includes the 4-byte header) and a body. An End node (Type 0x7F) ends an instance (SubType
0x01, printed ``,``) or the whole path (SubType 0xFF). ConIn/ConOut/ErrOut hold multi-instance
paths; a load option's FilePathList is a packed array of whole paths.

Text follows edk2's ``ConvertDevicePathToText(Path, DisplayOnly, AllowShortcuts)`` exactly,
with its quirks: hexadecimal digits are upper case (edk2's PrintLib has no lower case), GUIDs
are upper case, and a node after an End-Instance is still preceded by ``/`` (the separator
check in ``UefiDevicePathLibConvertDevicePathToText`` reads the string's terminator, never
the ``,``), so two instances print as ``A,/B``. Where edk2 would read past a node that is too
short for its type, the node is printed the generic way (``HardwarePath(1,...)``,
``Path(type,subtype,hex)``) instead.

The printers live in :mod:`.devicepath_text`, imported on first use by
:func:`device_path_text` and :func:`node_text` here; the constants both modules need are in
:mod:`.devicepath_defs`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fwtools._base.record import Record
from fwtools.errors import ParseError, TruncatedError, UsageError
from fwtools.formats.efi.devicepath_defs import (
    ACPI_DEVICE_PATH as ACPI_DEVICE_PATH,
)
from fwtools.formats.efi.devicepath_defs import (
    ACPI_DP as ACPI_DP,
)
from fwtools.formats.efi.devicepath_defs import (
    ACPI_EXTENDED_DP as ACPI_EXTENDED_DP,
)
from fwtools.formats.efi.devicepath_defs import (
    BBS_DEVICE_PATH as BBS_DEVICE_PATH,
)
from fwtools.formats.efi.devicepath_defs import (
    DEBUG_PORT_GUID as DEBUG_PORT_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    END_DEVICE_PATH_TYPE as END_DEVICE_PATH_TYPE,
)
from fwtools.formats.efi.devicepath_defs import (
    END_ENTIRE_NODE as END_ENTIRE_NODE,
)
from fwtools.formats.efi.devicepath_defs import (
    END_ENTIRE_SUBTYPE as END_ENTIRE_SUBTYPE,
)
from fwtools.formats.efi.devicepath_defs import (
    END_INSTANCE_NODE as END_INSTANCE_NODE,
)
from fwtools.formats.efi.devicepath_defs import (
    END_INSTANCE_SUBTYPE as END_INSTANCE_SUBTYPE,
)
from fwtools.formats.efi.devicepath_defs import (
    GENERIC_TYPE_NAMES as GENERIC_TYPE_NAMES,
)
from fwtools.formats.efi.devicepath_defs import (
    HARDDRIVE_BODY as HARDDRIVE_BODY,
)
from fwtools.formats.efi.devicepath_defs import (
    HARDWARE_DEVICE_PATH as HARDWARE_DEVICE_PATH,
)
from fwtools.formats.efi.devicepath_defs import (
    HW_PCI_DP as HW_PCI_DP,
)
from fwtools.formats.efi.devicepath_defs import (
    HW_VENDOR_DP as HW_VENDOR_DP,
)
from fwtools.formats.efi.devicepath_defs import (
    LENGTH_FIELD as LENGTH_FIELD,
)
from fwtools.formats.efi.devicepath_defs import (
    MAX_NODE_LENGTH as MAX_NODE_LENGTH,
)
from fwtools.formats.efi.devicepath_defs import (
    MBR_TYPE_EFI_PARTITION_TABLE_HEADER as MBR_TYPE_EFI_PARTITION_TABLE_HEADER,
)
from fwtools.formats.efi.devicepath_defs import (
    MBR_TYPE_PCAT as MBR_TYPE_PCAT,
)
from fwtools.formats.efi.devicepath_defs import (
    MEDIA_DEVICE_PATH as MEDIA_DEVICE_PATH,
)
from fwtools.formats.efi.devicepath_defs import (
    MEDIA_FILEPATH_DP as MEDIA_FILEPATH_DP,
)
from fwtools.formats.efi.devicepath_defs import (
    MEDIA_HARDDRIVE_DP as MEDIA_HARDDRIVE_DP,
)
from fwtools.formats.efi.devicepath_defs import (
    MEDIA_PIWG_FW_FILE_DP as MEDIA_PIWG_FW_FILE_DP,
)
from fwtools.formats.efi.devicepath_defs import (
    MEDIA_PIWG_FW_VOL_DP as MEDIA_PIWG_FW_VOL_DP,
)
from fwtools.formats.efi.devicepath_defs import (
    MEDIA_VENDOR_DP as MEDIA_VENDOR_DP,
)
from fwtools.formats.efi.devicepath_defs import (
    MESSAGING_DEVICE_PATH as MESSAGING_DEVICE_PATH,
)
from fwtools.formats.efi.devicepath_defs import (
    MSG_URI_DP as MSG_URI_DP,
)
from fwtools.formats.efi.devicepath_defs import (
    MSG_VENDOR_DP as MSG_VENDOR_DP,
)
from fwtools.formats.efi.devicepath_defs import (  # re-exported: the public names
    NODE_HEADER as NODE_HEADER,
)
from fwtools.formats.efi.devicepath_defs import (
    NODE_HEADER_SIZE as NODE_HEADER_SIZE,
)
from fwtools.formats.efi.devicepath_defs import (
    PC_ANSI_GUID as PC_ANSI_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    PERSISTENT_VIRTUAL_CD_GUID as PERSISTENT_VIRTUAL_CD_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    PERSISTENT_VIRTUAL_DISK_GUID as PERSISTENT_VIRTUAL_DISK_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    SAS_DEVICE_PATH_GUID as SAS_DEVICE_PATH_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    SIGNATURE_TYPE_GUID as SIGNATURE_TYPE_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    SIGNATURE_TYPE_MBR as SIGNATURE_TYPE_MBR,
)
from fwtools.formats.efi.devicepath_defs import (
    UART_FLOW_CONTROL_GUID as UART_FLOW_CONTROL_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    VIRTUAL_CD_GUID as VIRTUAL_CD_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    VIRTUAL_DISK_GUID as VIRTUAL_DISK_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    VT100_GUID as VT100_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    VT100_PLUS_GUID as VT100_PLUS_GUID,
)
from fwtools.formats.efi.devicepath_defs import (
    VT_UTF8_GUID as VT_UTF8_GUID,
)
from fwtools.formats.efi.devicepath_defs import ucs2_text

# -- model --------------------------------------------------------------------------------


class DevicePathNode(Record):
    """One device path node: its type, subtype and body (the bytes after the 4-byte header).

    ``offset`` is where the node starts in the file it was parsed from (not part of
    equality). ``text`` is edk2's full text form of the node (DisplayOnly and AllowShortcuts
    both FALSE); :meth:`to_text` gives the others.
    """

    type: int
    subtype: int
    data: bytes
    offset: int = 0
    _uncompared = frozenset({"offset"})

    @property
    def length(self) -> int:
        """The node's Length field: header plus body."""
        return NODE_HEADER_SIZE + len(self.data)

    @property
    def is_end(self) -> bool:
        return self.type == END_DEVICE_PATH_TYPE and self.subtype in (
            END_INSTANCE_SUBTYPE,
            END_ENTIRE_SUBTYPE,
        )

    @property
    def is_end_instance(self) -> bool:
        return self.type == END_DEVICE_PATH_TYPE and self.subtype == END_INSTANCE_SUBTYPE

    @property
    def is_end_entire(self) -> bool:
        return self.type == END_DEVICE_PATH_TYPE and self.subtype == END_ENTIRE_SUBTYPE

    @property
    def text(self) -> str:
        return self.to_text()

    def to_text(self, *, display_only: bool = False, allow_shortcuts: bool = False) -> str:
        """edk2's ``ConvertDeviceNodeToText`` of this node."""
        return node_text(self, display_only=display_only, allow_shortcuts=allow_shortcuts)

    @property
    def file_path(self) -> str | None:
        """The PathName of a Media File Path node, else None."""
        if (self.type, self.subtype) != (MEDIA_DEVICE_PATH, MEDIA_FILEPATH_DP):
            return None
        return ucs2_text(self.data)

    def to_bytes(self) -> bytes:
        if self.length > MAX_NODE_LENGTH:
            raise UsageError(f"device path node body of {len(self.data)} bytes is too long")
        if not (0 <= self.type <= 0xFF and 0 <= self.subtype <= 0xFF):
            raise UsageError(f"device path node type {self.type}/{self.subtype} out of range")
        return NODE_HEADER.pack(self.type, self.subtype, self.length) + self.data


# -- parsing ------------------------------------------------------------------------------


def _read_node(data: bytes | memoryview, pos: int, base: int, index: int) -> DevicePathNode:
    structure = f"device path node[{index}]"
    if len(data) - pos < NODE_HEADER_SIZE:
        raise TruncatedError(
            f"needs a {NODE_HEADER_SIZE}-byte node header, only {len(data) - pos} bytes left "
            "(no End-of-Device-Path node)",
            structure=structure,
            offset=base + pos,
        )
    node_type, subtype, length = NODE_HEADER.unpack_from(data, pos)
    if length < NODE_HEADER_SIZE:
        raise ParseError(
            f"Length {length} is smaller than the {NODE_HEADER_SIZE}-byte node header",
            structure=structure,
            offset=base + pos + LENGTH_FIELD,
        )
    if length > len(data) - pos:
        raise TruncatedError(
            f"Length {length} runs past the end ({len(data) - pos} bytes left)",
            structure=structure,
            offset=base + pos + LENGTH_FIELD,
        )
    is_end = node_type == END_DEVICE_PATH_TYPE and subtype in (
        END_INSTANCE_SUBTYPE,
        END_ENTIRE_SUBTYPE,
    )
    if is_end and length != NODE_HEADER_SIZE:
        # edk2's IsDevicePathValid requires the End node to be exactly 4 bytes.
        raise ParseError(
            f"End node Length is {length}, must be {NODE_HEADER_SIZE}",
            structure=structure,
            offset=base + pos + LENGTH_FIELD,
        )
    return DevicePathNode(node_type, subtype, bytes(data[pos + NODE_HEADER_SIZE : pos + length]),
                          base + pos)


def _parse_one(
    data: bytes | memoryview, pos: int, base: int, first_index: int
) -> tuple[list[DevicePathNode], int]:
    """Nodes from ``pos`` up to and including the End-Entire node; (nodes, end position).

    Bounded: every node is at least 4 bytes, so the loop runs at most len(data)/4 times.
    """
    nodes: list[DevicePathNode] = []
    index = first_index
    while True:
        node = _read_node(data, pos, base, index)
        pos += node.length
        index += 1
        nodes.append(node)
        if node.is_end_entire:
            return nodes, pos


def parse_device_path(data: bytes | memoryview, *, base: int = 0) -> list[list[DevicePathNode]]:
    """Parse one (possibly multi-instance) device path that exactly fills ``data``.

    Returns the instances (split at End-Instance nodes), without their End nodes: one
    instance for an ordinary path, several for ConOut-style paths, ``[[]]`` for a path that
    is only an End node. ``base`` is the absolute offset of ``data`` in its file, used in
    errors and in the nodes' ``offset``. Raises :class:`ParseError` (or
    :class:`TruncatedError`) with the offset of the bad node: a Length below 4 or past the
    end, an End node that is not 4 bytes, no End-of-Entire-Device-Path node, or bytes after
    it.
    """
    nodes, end = _parse_one(data, 0, base, 0)
    if end != len(data):
        raise ParseError(
            f"{len(data) - end} bytes after the End-of-Entire-Device-Path node",
            structure="device path",
            offset=base + end,
        )
    return split_instances(nodes)


def parse_device_path_list(
    data: bytes | memoryview, *, base: int = 0
) -> list[list[DevicePathNode]]:
    """Parse a packed array of device paths (a load option's FilePathList) that exactly
    fills ``data``: one list of nodes per path, without the terminating End-Entire node.
    End-Instance nodes inside a path (unusual there) stay in the list as nodes, so
    :func:`device_path_list_to_bytes` gives the input back byte for byte."""
    paths: list[list[DevicePathNode]] = []
    pos = 0
    count = 0
    while pos < len(data):
        nodes, pos = _parse_one(data, pos, base, count)
        count += len(nodes)
        paths.append(nodes[:-1])
    return paths


def split_instances(nodes: Sequence[DevicePathNode]) -> list[list[DevicePathNode]]:
    """Split nodes at End-Instance nodes, dropping End nodes (an End-Entire ends the path)."""
    instances: list[list[DevicePathNode]] = [[]]
    for node in nodes:
        if node.is_end_entire:
            break
        if node.is_end_instance:
            instances.append([])
        else:
            instances[-1].append(node)
    return instances


# -- serialising --------------------------------------------------------------------------


def device_path_to_bytes(instances: Sequence[Sequence[DevicePathNode]]) -> bytes:
    """The bytes of a (multi-instance) device path: instances joined by End-Instance nodes,
    then End-Entire. ``parse_device_path`` of the result gives ``instances`` back."""
    parts: list[bytes] = []
    for i, instance in enumerate(instances):
        if i:
            parts.append(END_INSTANCE_NODE)
        parts.extend(node.to_bytes() for node in instance)
    parts.append(END_ENTIRE_NODE)
    return b"".join(parts)


def device_path_list_to_bytes(paths: Sequence[Sequence[DevicePathNode]]) -> bytes:
    """A FilePathList: each path's nodes followed by End-Entire."""
    return b"".join(
        b"".join(node.to_bytes() for node in path) + END_ENTIRE_NODE for path in paths
    )




# -- text (edk2's, in devicepath_text) ---------------------------------------------------


def node_text(
    node: DevicePathNode, *, display_only: bool = False, allow_shortcuts: bool = False
) -> str:
    """edk2's ``ConvertDeviceNodeToText(node, DisplayOnly, AllowShortcuts)``."""
    from fwtools.formats.efi import devicepath_text

    return devicepath_text.node_text(node, display_only=display_only,
                                     allow_shortcuts=allow_shortcuts)


def device_path_text(
    path: bytes | Sequence[DevicePathNode] | Sequence[Sequence[DevicePathNode]],
    *,
    display_only: bool = False,
    allow_shortcuts: bool = False,
) -> str:
    """edk2's ``ConvertDevicePathToText(path, DisplayOnly, AllowShortcuts)``.

    ``path`` is the raw bytes of one device path (parsed with :func:`parse_device_path`),
    a list of instances as that function returns, or one flat list of nodes (a load
    option's path). Instances are joined as edk2 joins them (``A,/B``). The UEFI shell's
    ``bcfg boot dump`` uses ``display_only=True``; the default is the full form.
    """
    from fwtools.formats.efi import devicepath_text

    if isinstance(path, bytes | bytearray | memoryview):
        path = parse_device_path(path)
    items: list[object] = list(path)
    flat: list[DevicePathNode] = []
    if items and isinstance(items[0], DevicePathNode):
        for item in items:
            if not isinstance(item, DevicePathNode):
                raise UsageError("mixed nodes and instances in a device path")
            flat.append(item)
    else:
        for i, instance in enumerate(items):
            if not isinstance(instance, Sequence) or not all(
                isinstance(n, DevicePathNode) for n in instance
            ):
                raise UsageError("a device path is nodes or lists of nodes")
            if i:
                flat.append(DevicePathNode(END_DEVICE_PATH_TYPE, END_INSTANCE_SUBTYPE, b""))
            flat.extend(n for n in instance if isinstance(n, DevicePathNode))
    return devicepath_text.render_nodes(flat, display_only, allow_shortcuts)


# -- building -------------------------------------------------------------------------------


def file_path_node(path: str) -> DevicePathNode:
    """A Media File Path node (``\\EFI\\debian\\shimx64.efi``).

    ``/`` is turned into ``\\`` and a leading ``\\`` added, as firmware expects paths from
    the root of the file system. The name must be UCS-2 (no characters beyond U+FFFF) and
    must not contain NUL; :class:`UsageError` otherwise.
    """
    text = path.replace("/", "\\")
    if not text.startswith("\\"):
        text = "\\" + text
    if "\0" in text:
        raise UsageError(f"file path {path!r} contains NUL")
    if any(ord(c) > 0xFFFF for c in text):
        raise UsageError(f"file path {path!r} has characters UCS-2 cannot hold")
    body = text.encode("utf-16-le") + b"\0\0"
    if NODE_HEADER_SIZE + len(body) > MAX_NODE_LENGTH:
        raise UsageError(f"file path of {len(text)} characters is too long for a node")
    return DevicePathNode(MEDIA_DEVICE_PATH, MEDIA_FILEPATH_DP, body)


def hard_drive_node(
    partition_number: int,
    partition_start: int,
    partition_size: int,
    partition_guid: uuid.UUID | str,
) -> DevicePathNode:
    """An ``HD(n,GPT,<guid>,start,size)`` node (LBAs; the GUID is the partition's
    UniquePartitionGUID, what Linux shows as PARTUUID)."""
    try:
        guid = partition_guid if isinstance(partition_guid, uuid.UUID) else uuid.UUID(
            partition_guid.strip()
        )
    except ValueError:
        raise UsageError(f"not a partition GUID: {partition_guid!r}") from None
    for name, value, bits in (
        ("partition number", partition_number, 32),
        ("partition start", partition_start, 64),
        ("partition size", partition_size, 64),
    ):
        if not 0 <= value < 1 << bits:
            raise UsageError(f"{name} {value} does not fit in {bits} bits")
    body = HARDDRIVE_BODY.pack(
        partition_number,
        partition_start,
        partition_size,
        guid.bytes_le,
        MBR_TYPE_EFI_PARTITION_TABLE_HEADER,
        SIGNATURE_TYPE_GUID,
    )
    return DevicePathNode(MEDIA_DEVICE_PATH, MEDIA_HARDDRIVE_DP, body)


def uri_node(uri: str) -> DevicePathNode:
    """A Messaging URI node (HTTP boot), ASCII without a NUL, as edk2's HttpBootDxe makes."""
    try:
        body = uri.encode("ascii")
    except UnicodeEncodeError:
        raise UsageError(f"URI {uri!r} is not ASCII (percent-encode it)") from None
    if NODE_HEADER_SIZE + len(body) > MAX_NODE_LENGTH:
        raise UsageError("URI too long for a device path node")
    return DevicePathNode(MESSAGING_DEVICE_PATH, MSG_URI_DP, body)


def build_file_path(path: str) -> bytes:
    """A short-form file path (UEFI 2.10 §3.1.2): only ``\\path\\to\\loader.efi`` and End.

    The firmware (edk2's ``BmExpandFileDevicePath``) tries the path on every simple file
    system, removable media first, so it boots whatever ESP holds the file.
    """
    return device_path_to_bytes([[file_path_node(path)]])


def build_hd_file_path(
    partition_number: int,
    partition_start: int,
    partition_size: int,
    partition_guid: uuid.UUID | str,
    path: str,
) -> bytes:
    """A hard-drive media path ``HD(n,GPT,guid,start,size)/\\path`` and End: the short form
    efibootmgr writes, which firmware matches against the GPT partition's GUID."""
    return device_path_to_bytes(
        [[hard_drive_node(partition_number, partition_start, partition_size, partition_guid),
          file_path_node(path)]]
    )


__all__ = [
    "END_DEVICE_PATH_TYPE",
    "END_ENTIRE_SUBTYPE",
    "END_INSTANCE_SUBTYPE",
    "DevicePathNode",
    "build_file_path",
    "build_hd_file_path",
    "device_path_list_to_bytes",
    "device_path_text",
    "device_path_to_bytes",
    "file_path_node",
    "hard_drive_node",
    "node_text",
    "parse_device_path",
    "parse_device_path_list",
    "split_instances",
    "uri_node",
]
