"""EFI device paths as text, exactly as edk2 prints them (split from :mod:`.devicepath`,
which parses, serialises and builds them).

References: edk2 ``MdePkg/Library/UefiDevicePathLib/DevicePathToText.c`` (read at
microsoft/mu_basecore 413351cc, which carries upstream's 2023 AcpiEx rules), including
``DevPathToTextNodeGeneric`` for nodes it has no printer for; UEFI 2.10 §10.6 (text form).

Text follows edk2's ``ConvertDevicePathToText(Path, DisplayOnly, AllowShortcuts)`` exactly,
with its quirks: hexadecimal digits are upper case (edk2's PrintLib has no lower case), GUIDs
are upper case, and a node after an End-Instance is still preceded by ``/`` (the separator
check in ``UefiDevicePathLibConvertDevicePathToText`` reads the string's terminator, never
the ``,``), so two instances print as ``A,/B``. Where edk2 would read past a node that is too
short for its type, the node is printed the generic way (``HardwarePath(1,...)``,
``Path(type,subtype,hex)``) instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, Protocol

from fwtools._base.guid import guid_from_bytes
from fwtools.formats.efi.devicepath_defs import (
    ACPI_DEVICE_PATH,
    BBS_DEVICE_PATH,
    DEBUG_PORT_GUID,
    END_DEVICE_PATH_TYPE,
    END_INSTANCE_SUBTYPE,
    GENERIC_TYPE_NAMES,
    HARDDRIVE_BODY,
    HARDWARE_DEVICE_PATH,
    MEDIA_DEVICE_PATH,
    MESSAGING_DEVICE_PATH,
    PC_ANSI_GUID,
    PERSISTENT_VIRTUAL_CD_GUID,
    PERSISTENT_VIRTUAL_DISK_GUID,
    SAS_DEVICE_PATH_GUID,
    SIGNATURE_TYPE_GUID,
    SIGNATURE_TYPE_MBR,
    UART_FLOW_CONTROL_GUID,
    VIRTUAL_CD_GUID,
    VIRTUAL_DISK_GUID,
    VT100_GUID,
    VT100_PLUS_GUID,
    VT_UTF8_GUID,
    ucs2_text,
)

if TYPE_CHECKING:  # for the type checker only: a Protocol costs ~1 ms to create at import

    class Node(Protocol):
        """What a printer reads of a node (a
        :class:`fwtools.formats.efi.devicepath.DevicePathNode`; the printers do not import
        the model)."""

        @property
        def type(self) -> int: ...
        @property
        def subtype(self) -> int: ...
        @property
        def data(self) -> bytes: ...
        @property
        def is_end_entire(self) -> bool: ...
        @property
        def is_end_instance(self) -> bool: ...
        @property
        def length(self) -> int: ...


def _hex(value: int) -> str:
    """edk2 ``0x%x``: upper-case digits."""
    return f"0x{value:X}"


def _guid(raw: bytes, offset: int = 0) -> str:
    """edk2 ``%g``: the canonical form in upper case."""
    return str(guid_from_bytes(raw, offset)).upper()


def _hexbytes(raw: bytes) -> str:
    return raw.hex().upper()


def _ascii(raw: bytes) -> str:
    """edk2 ``%a``: bytes up to the first NUL (Latin-1 for anything above 0x7F)."""
    return raw.split(b"\0", 1)[0].decode("latin-1")


def _ipv4(raw: bytes) -> str:
    return ".".join(str(b) for b in raw[:4])


def _ipv6(raw: bytes) -> str:
    # CatIPv6Address: eight groups of four hex digits, no compression.
    return ":".join(raw[i : i + 2].hex().upper() for i in range(0, 16, 2))


def _eisa_text(value: int) -> str:
    """``%c%c%c%04X`` of a compressed EISA id (``PNP0A03``; 0 gives ``@@@0000``)."""
    letters = "".join(chr(((value >> shift) & 0x1F) + ord("A") - 1) for shift in (10, 5, 0))
    return f"{letters}{(value >> 16) & 0xFFFF:04X}"


def _u8(b: bytes, o: int) -> int:
    return b[o]


def _u16(b: bytes, o: int) -> int:
    return int.from_bytes(b[o : o + 2], "little")


def _u32(b: bytes, o: int) -> int:
    return int.from_bytes(b[o : o + 4], "little")


def _u64(b: bytes, o: int) -> int:
    return int.from_bytes(b[o : o + 8], "little")


_Printer = Callable[["Node", bool, bool], str]


def _pci(n: Node, d: bool, s: bool) -> str:
    return f"Pci({_hex(n.data[1])},{_hex(n.data[0])})"


def _pccard(n: Node, d: bool, s: bool) -> str:
    return f"PcCard({_hex(n.data[0])})"


def _memmap(n: Node, d: bool, s: bool) -> str:
    b = n.data
    return f"MemoryMapped({_hex(_u32(b, 0))},{_hex(_u64(b, 4))},{_hex(_u64(b, 12))})"


def _topology_fields(info: int, trailing_comma: bool) -> str:
    """The SAS/SasEx DeviceTopology part of the text (DevPathToTextVendor/SasEx)."""
    sep = "," if trailing_comma else ""
    if (info & 0x0F) == 0 and not info & 0x80:
        return "NoTopology,0,0,0" + sep
    if (info & 0x0F) <= 2 and not info & 0x80:
        text = ",".join(
            (
                "SATA" if info & 0x10 else "SAS",
                "External" if info & 0x20 else "Internal",
                "Expanded" if info & 0x40 else "Direct",
            )
        ) + ","
        text += "0" if (info & 0x0F) == 1 else _hex(((info >> 8) & 0xFF) + 1)
        return text + sep
    return f"{_hex(info)},0,0,0" + sep


def _vendor(n: Node, display_only: bool, shortcuts: bool) -> str:
    guid = guid_from_bytes(n.data)
    body = n.data[16:]
    if n.type == HARDWARE_DEVICE_PATH:
        kind = "Hw"
    elif n.type == MESSAGING_DEVICE_PATH:
        kind = "Msg"
        if shortcuts:
            simple = {
                PC_ANSI_GUID: "VenPcAnsi()",
                VT100_GUID: "VenVt100()",
                VT100_PLUS_GUID: "VenVt100Plus()",
                VT_UTF8_GUID: "VenUtf8()",
                DEBUG_PORT_GUID: "DebugPort()",
            }
            if guid in simple:
                return simple[guid]
            if guid == UART_FLOW_CONTROL_GUID and len(body) >= 4:
                names = {0: "None", 1: "Hardware", 2: "XonXoff"}
                flow = _u32(body, 0) & 0x3
                # edk2 prints nothing at all for the reserved value 3.
                return f"UartFlowCtrl({names[flow]})" if flow in names else ""
            if guid == SAS_DEVICE_PATH_GUID and len(body) >= 24:
                # SAS_DEVICE_PATH after the GUID: Reserved u32, SasAddress u64, Lun u64,
                # DeviceTopology u16, RelativeTargetPort u16.
                text = f"SAS({_hex(_u64(body, 4))},{_hex(_u64(body, 12))},{_hex(_u16(body, 22))},"
                text += _topology_fields(_u16(body, 20), trailing_comma=True)
                return text + f"{_hex(_u32(body, 0))})"
    elif n.type == MEDIA_DEVICE_PATH:
        kind = "Media"
    else:
        kind = "?"
    text = f"Ven{kind}({str(guid).upper()}"
    if body:
        text += "," + _hexbytes(body)
    return text + ")"


def _controller(n: Node, d: bool, s: bool) -> str:
    return f"Ctrl({_hex(_u32(n.data, 0))})"


def _bmc(n: Node, d: bool, s: bool) -> str:
    return f"BMC({_hex(n.data[0])},{_hex(_u64(n.data, 1))})"


_ACPI_SHORT: Final = {
    0x0A03: "PciRoot",
    0x0A08: "PcieRoot",
    0x0604: "Floppy",
    0x0301: "Keyboard",
    0x0501: "Serial",
    0x0401: "ParallelPort",
}
PNP_EISA_ID_CONST: Final = 0x41D0


def _acpi(n: Node, d: bool, s: bool) -> str:
    hid, uid = _u32(n.data, 0), _u32(n.data, 4)
    if hid & 0xFFFF == PNP_EISA_ID_CONST:
        num = hid >> 16
        if num in _ACPI_SHORT:
            return f"{_ACPI_SHORT[num]}({_hex(uid)})"
        return f"Acpi(PNP{num:04X},{_hex(uid)})"
    return f"Acpi(0x{hid:08X},{_hex(uid)})"


def _acpi_ex(n: Node, display_only: bool, s: bool) -> str:
    b = n.data
    hid, uid, cid = _u32(b, 0), _u32(b, 4), _u32(b, 8)
    # Up to three NUL-terminated strings follow: HIDSTR, UIDSTR, CIDSTR (read only as far
    # as the node goes, as edk2 does since 2023).
    strings: list[str | None] = [None, None, None]
    pos = 12
    index = 0
    while pos < len(b) and index < 3:
        end = b.find(b"\0", pos)
        end = len(b) if end < 0 else end
        strings[index] = b[pos:end].decode("latin-1")
        pos = end + 1
        index += 1
    hid_str, uid_str, cid_str = strings
    hid_num, cid_num = hid >> 16, cid >> 16
    if display_only:
        if hid_num == 0x0A03 or (cid_num == 0x0A03 and hid_num != 0x0A08):
            return f"PciRoot({uid_str if uid_str is not None else _hex(uid)})"
        if hid_num == 0x0A08 or cid_num == 0x0A08:
            return f"PcieRoot({uid_str if uid_str is not None else _hex(uid)})"
    hid_text, cid_text = _eisa_text(hid), _eisa_text(cid)
    if hid_str == "" and cid_str == "" and uid_str:
        return f"AcpiExp({hid_text},{'0' if cid == 0 else cid_text},{uid_str})"
    if display_only:
        return (
            f"AcpiEx({hid_str if hid_str is not None else hid_text},"
            f"{cid_str if cid_str is not None else cid_text},"
            f"{uid_str if uid_str is not None else _hex(uid)})"
        )
    # edk2 passes NULL for a missing string, which its PrintLib prints as "<null string>".
    null = "<null string>"
    return (
        f"AcpiEx({hid_text},{cid_text},{_hex(uid)},{null if hid_str is None else hid_str},"
        f"{null if cid_str is None else cid_str},{null if uid_str is None else uid_str})"
    )


def _acpi_adr(n: Node, d: bool, s: bool) -> str:
    values = [_u32(n.data, i) for i in range(0, len(n.data) - 3, 4)]
    return "AcpiAdr(" + ",".join(_hex(v) for v in values) + ")"


def _atapi(n: Node, display_only: bool, s: bool) -> str:
    lun = _u16(n.data, 2)
    if display_only:
        return f"Ata({_hex(lun)})"
    primary = "Secondary" if n.data[0] == 1 else "Primary"
    master = "Slave" if n.data[1] == 1 else "Master"
    return f"Ata({primary},{master},{_hex(lun)})"


def _scsi(n: Node, d: bool, s: bool) -> str:
    return f"Scsi({_hex(_u16(n.data, 0))},{_hex(_u16(n.data, 2))})"


def _fibre(n: Node, d: bool, s: bool) -> str:
    return f"Fibre({_hex(_u64(n.data, 4))},{_hex(_u64(n.data, 12))})"


def _fibre_ex(n: Node, d: bool, s: bool) -> str:
    return f"FibreEx(0x{_hexbytes(n.data[4:12])},0x{_hexbytes(n.data[12:20])})"


def _sas_ex(n: Node, d: bool, s: bool) -> str:
    b = n.data
    text = f"SasEx(0x{_hexbytes(b[0:8])},0x{_hexbytes(b[8:16])},{_hex(_u16(b, 18))},"
    return text + _topology_fields(_u16(b, 16), trailing_comma=False) + ")"


def _nvme(n: Node, d: bool, s: bool) -> str:
    eui = "-".join(f"{x:02X}" for x in reversed(n.data[4:12]))
    return f"NVMe({_hex(_u32(n.data, 0))},{eui})"


def _ufs(n: Node, d: bool, s: bool) -> str:
    return f"UFS({_hex(n.data[0])},{_hex(n.data[1])})"


def _sd(n: Node, d: bool, s: bool) -> str:
    return f"SD({_hex(n.data[0])})"


def _emmc(n: Node, d: bool, s: bool) -> str:
    return f"eMMC({_hex(n.data[0])})"


def _i1394(n: Node, d: bool, s: bool) -> str:
    return f"I1394({_u64(n.data, 4):016X})"


def _usb(n: Node, d: bool, s: bool) -> str:
    return f"USB({_hex(n.data[0])},{_hex(n.data[1])})"


def _usb_wwid(n: Node, d: bool, s: bool) -> str:
    b = n.data
    serial = ucs2_text(b[6:])
    return f'UsbWwid({_hex(_u16(b, 2))},{_hex(_u16(b, 4))},{_hex(_u16(b, 0))},"{serial}")'


def _logical_unit(n: Node, d: bool, s: bool) -> str:
    return f"Unit({_hex(n.data[0])})"


_USB_CLASS_NAMES: Final = {
    0x01: "UsbAudio",
    0x02: "UsbCDCControl",
    0x03: "UsbHID",
    0x06: "UsbImage",
    0x07: "UsbPrinter",
    0x08: "UsbMassStorage",
    0x09: "UsbHub",
    0x0A: "UsbCDCData",
    0x0B: "UsbSmartCard",
    0x0E: "UsbVideo",
    0xDC: "UsbDiagnostic",
    0xE0: "UsbWireless",
}
_USB_RESERVED_SUBCLASS_NAMES: Final = {
    0x01: "UsbDeviceFirmwareUpdate",
    0x02: "UsbIrdaBridge",
    0x03: "UsbTestAndMeasurement",
}
USB_CLASS_RESERVE: Final = 0xFE


def _usb_class(n: Node, d: bool, s: bool) -> str:
    b = n.data
    vendor, product, cls, sub, proto = _u16(b, 0), _u16(b, 2), b[4], b[5], b[6]
    if cls in _USB_CLASS_NAMES:
        return (
            f"{_USB_CLASS_NAMES[cls]}({_hex(vendor)},{_hex(product)},{_hex(sub)},{_hex(proto)})"
        )
    if cls == USB_CLASS_RESERVE and sub in _USB_RESERVED_SUBCLASS_NAMES:
        name = _USB_RESERVED_SUBCLASS_NAMES[sub]
        return f"{name}({_hex(vendor)},{_hex(product)},{_hex(proto)})"
    return (
        f"UsbClass({_hex(vendor)},{_hex(product)},{_hex(cls)},{_hex(sub)},{_hex(proto)})"
    )


def _sata(n: Node, d: bool, s: bool) -> str:
    b = n.data
    return f"Sata({_hex(_u16(b, 0))},{_hex(_u16(b, 2))},{_hex(_u16(b, 4))})"


def _i2o(n: Node, d: bool, s: bool) -> str:
    return f"I2O({_hex(_u32(n.data, 0))})"


def _mac(n: Node, d: bool, s: bool) -> str:
    if_type = n.data[32]
    size = 6 if if_type in (0x00, 0x01) else 32
    return f"MAC({_hexbytes(n.data[:size])},{_hex(if_type)})"


def _protocol(value: int) -> str:
    # RFC 1700 protocol numbers (CatNetworkProtocol).
    return {6: "TCP", 17: "UDP"}.get(value, _hex(value))


def _ipv4_node(n: Node, display_only: bool, s: bool) -> str:
    # Body: LocalIp[4], RemoteIp[4], LocalPort, RemotePort, Protocol (u16), StaticIpAddress
    # (u8), then (UEFI 2.3+, node length 27) GatewayIp[4], SubnetMask[4].
    b = n.data
    text = f"IPv4({_ipv4(b[4:8])}"
    if display_only:
        return text + ")"
    text += f",{_protocol(_u16(b, 12))},{'Static' if b[14] else 'DHCP'},{_ipv4(b[0:4])}"
    if n.length == 27:
        text += f",{_ipv4(b[15:19])},{_ipv4(b[19:23])}"
    return text + ")"


def _ipv6_node(n: Node, display_only: bool, s: bool) -> str:
    # Body: LocalIp[16], RemoteIp[16], LocalPort, RemotePort, Protocol (u16),
    # IpAddressOrigin u8, then (node length 60) PrefixLength u8, GatewayIp[16].
    b = n.data
    text = f"IPv6({_ipv6(b[16:32])}"
    if display_only:
        return text + ")"
    origin = {0: "Static", 1: "StatelessAutoConfigure"}.get(b[38], "StatefulAutoConfigure")
    text += f",{_protocol(_u16(b, 36))},{origin},{_ipv6(b[0:16])}"
    if n.length == 60:
        text += f",{_hex(b[39])},{_ipv6(b[40:56])}"
    return text + ")"


def _infiniband(n: Node, d: bool, s: bool) -> str:
    b = n.data
    return (
        f"Infiniband({_hex(_u32(b, 0))},{_guid(b, 4)},{_hex(_u64(b, 20))},"
        f"{_hex(_u64(b, 28))},{_hex(_u64(b, 36))})"
    )


def _uart(n: Node, d: bool, s: bool) -> str:
    b = n.data
    baud, bits, parity, stop = _u64(b, 4), b[12], b[13], b[14]
    parity_char = {0: "D", 1: "N", 2: "E", 3: "O", 4: "M", 5: "S"}.get(parity, "x")
    stop_text = {0: "D", 1: "1", 2: "1.5", 3: "2"}.get(stop, "x")
    return (
        f"Uart({'DEFAULT' if baud == 0 else baud},{'DEFAULT' if bits == 0 else bits},"
        f"{parity_char},{stop_text})"
    )


def _iscsi(n: Node, d: bool, s: bool) -> str:
    # Body: NetworkProtocol u16, LoginOption u16, Lun (8 bytes), TargetPortalGroupTag u16,
    # TargetName (ASCII).
    b = n.data
    options = _u16(b, 2)
    text = f"iSCSI({_ascii(b[14:])},{_hex(_u16(b, 12))},0x{_hexbytes(b[4:12])}"
    text += f",{'CRC32C' if options >> 1 & 1 else 'None'}"
    text += f",{'CRC32C' if options >> 3 & 1 else 'None'}"
    if options >> 11 & 1:
        auth = "None"
    elif options >> 12 & 1:
        auth = "CHAP_UNI"
    else:
        auth = "CHAP_BI"
    return text + f",{auth},{'TCP' if _u16(b, 0) == 0 else 'reserved'})"


def _vlan(n: Node, d: bool, s: bool) -> str:
    return f"Vlan({_u16(n.data, 0)})"


def _dns(n: Node, d: bool, s: bool) -> str:
    b = n.data
    is_ipv6 = b[0] != 0
    count = (len(b) - 1) // 16
    slots = [b[1 + 16 * i : 17 + 16 * i] for i in range(count)]
    return "Dns(" + ",".join(_ipv6(x) if is_ipv6 else _ipv4(x) for x in slots) + ")"


def _uri(n: Node, d: bool, s: bool) -> str:
    return f"Uri({_ascii(n.data)})"


def _bluetooth(n: Node, d: bool, s: bool) -> str:
    return f"Bluetooth({_hexbytes(n.data[:6])})"


def _wifi(n: Node, d: bool, s: bool) -> str:
    return f"Wi-Fi({_ascii(n.data[:32])})"


def _bluetooth_le(n: Node, d: bool, s: bool) -> str:
    return f"BluetoothLE({_hexbytes(n.data[:6])},0x{n.data[6]:02X})"


def _hard_drive(n: Node, display_only: bool, s: bool) -> str:
    number, start, size, signature, _mbr_type, sig_type = HARDDRIVE_BODY.unpack_from(n.data)
    if sig_type == SIGNATURE_TYPE_MBR:
        text = f"HD({number},MBR,0x{_u32(signature, 0):08X}"
    elif sig_type == SIGNATURE_TYPE_GUID:
        text = f"HD({number},GPT,{_guid(signature)}"
    else:
        text = f"HD({number},{sig_type},0"
    # edk2 2025.02 (measured, Debian trixie's shell) leaves the partition start and size
    # out of the display-only form; 2022.11 still printed them there too.
    if display_only:
        return text + ")"
    return text + f",{_hex(start)},{_hex(size)})"


def _cdrom(n: Node, display_only: bool, s: bool) -> str:
    b = n.data
    if display_only:
        return f"CDROM({_hex(_u32(b, 0))})"
    return f"CDROM({_hex(_u32(b, 0))},{_hex(_u64(b, 4))},{_hex(_u64(b, 12))})"


def _file_path(n: Node, d: bool, s: bool) -> str:
    return ucs2_text(n.data)


def _media_protocol(n: Node, d: bool, s: bool) -> str:
    return f"Media({_guid(n.data)})"


def _fv(n: Node, d: bool, s: bool) -> str:
    return f"Fv({_guid(n.data)})"


def _fv_file(n: Node, d: bool, s: bool) -> str:
    return f"FvFile({_guid(n.data)})"


def _offset(n: Node, d: bool, s: bool) -> str:
    return f"Offset({_hex(_u64(n.data, 4))},{_hex(_u64(n.data, 12))})"


_RAM_DISK_NAMES: Final = {
    VIRTUAL_DISK_GUID: "VirtualDisk",
    VIRTUAL_CD_GUID: "VirtualCD",
    PERSISTENT_VIRTUAL_DISK_GUID: "PersistentVirtualDisk",
    PERSISTENT_VIRTUAL_CD_GUID: "PersistentVirtualCD",
}


def _ram_disk(n: Node, d: bool, s: bool) -> str:
    b = n.data
    start, end, kind, instance = _u64(b, 0), _u64(b, 8), guid_from_bytes(b, 16), _u16(b, 32)
    name = _RAM_DISK_NAMES.get(kind)
    if name is not None:
        return f"{name}({_hex(start)},{_hex(end)},{instance})"
    return f"RamDisk({_hex(start)},{_hex(end)},{instance},{str(kind).upper()})"


_BBS_TYPES: Final = {1: "Floppy", 2: "HD", 3: "CDROM", 4: "PCMCIA", 5: "USB", 6: "Network"}


def _bbs(n: Node, display_only: bool, s: bool) -> str:
    b = n.data
    kind = _u16(b, 0)
    text = f"BBS({_BBS_TYPES.get(kind, _hex(kind))},{_ascii(b[4:])}"
    if display_only:
        return text + ")"
    return text + f",{_hex(_u16(b, 2))})"


def _end_instance(n: Node, d: bool, s: bool) -> str:
    return ","


# (type, subtype) -> (minimum body size, printer). The minimum is what the printer reads;
# shorter nodes are printed generically.
_PRINTERS: Final[dict[tuple[int, int], tuple[int, _Printer]]] = {
    (HARDWARE_DEVICE_PATH, 0x01): (2, _pci),
    (HARDWARE_DEVICE_PATH, 0x02): (1, _pccard),
    (HARDWARE_DEVICE_PATH, 0x03): (20, _memmap),
    (HARDWARE_DEVICE_PATH, 0x04): (16, _vendor),
    (HARDWARE_DEVICE_PATH, 0x05): (4, _controller),
    (HARDWARE_DEVICE_PATH, 0x06): (9, _bmc),
    (ACPI_DEVICE_PATH, 0x01): (8, _acpi),
    (ACPI_DEVICE_PATH, 0x02): (12, _acpi_ex),
    (ACPI_DEVICE_PATH, 0x03): (4, _acpi_adr),
    (MESSAGING_DEVICE_PATH, 0x01): (4, _atapi),
    (MESSAGING_DEVICE_PATH, 0x02): (4, _scsi),
    (MESSAGING_DEVICE_PATH, 0x03): (20, _fibre),
    (MESSAGING_DEVICE_PATH, 0x04): (12, _i1394),
    (MESSAGING_DEVICE_PATH, 0x05): (2, _usb),
    (MESSAGING_DEVICE_PATH, 0x06): (4, _i2o),
    (MESSAGING_DEVICE_PATH, 0x09): (44, _infiniband),
    (MESSAGING_DEVICE_PATH, 0x0A): (16, _vendor),
    (MESSAGING_DEVICE_PATH, 0x0B): (33, _mac),
    (MESSAGING_DEVICE_PATH, 0x0C): (15, _ipv4_node),
    (MESSAGING_DEVICE_PATH, 0x0D): (39, _ipv6_node),
    (MESSAGING_DEVICE_PATH, 0x0E): (15, _uart),
    (MESSAGING_DEVICE_PATH, 0x0F): (7, _usb_class),
    (MESSAGING_DEVICE_PATH, 0x10): (6, _usb_wwid),
    (MESSAGING_DEVICE_PATH, 0x11): (1, _logical_unit),
    (MESSAGING_DEVICE_PATH, 0x12): (6, _sata),
    (MESSAGING_DEVICE_PATH, 0x13): (14, _iscsi),
    (MESSAGING_DEVICE_PATH, 0x14): (2, _vlan),
    (MESSAGING_DEVICE_PATH, 0x15): (20, _fibre_ex),
    (MESSAGING_DEVICE_PATH, 0x16): (20, _sas_ex),
    (MESSAGING_DEVICE_PATH, 0x17): (12, _nvme),
    (MESSAGING_DEVICE_PATH, 0x18): (0, _uri),
    (MESSAGING_DEVICE_PATH, 0x19): (2, _ufs),
    (MESSAGING_DEVICE_PATH, 0x1A): (1, _sd),
    (MESSAGING_DEVICE_PATH, 0x1B): (6, _bluetooth),
    (MESSAGING_DEVICE_PATH, 0x1C): (32, _wifi),
    (MESSAGING_DEVICE_PATH, 0x1D): (1, _emmc),
    (MESSAGING_DEVICE_PATH, 0x1E): (7, _bluetooth_le),
    (MESSAGING_DEVICE_PATH, 0x1F): (1, _dns),
    (MEDIA_DEVICE_PATH, 0x01): (HARDDRIVE_BODY.size, _hard_drive),
    (MEDIA_DEVICE_PATH, 0x02): (20, _cdrom),
    (MEDIA_DEVICE_PATH, 0x03): (16, _vendor),
    (MEDIA_DEVICE_PATH, 0x04): (0, _file_path),
    (MEDIA_DEVICE_PATH, 0x05): (16, _media_protocol),
    (MEDIA_DEVICE_PATH, 0x06): (16, _fv_file),
    (MEDIA_DEVICE_PATH, 0x07): (16, _fv),
    (MEDIA_DEVICE_PATH, 0x08): (20, _offset),
    (MEDIA_DEVICE_PATH, 0x09): (34, _ram_disk),
    (BBS_DEVICE_PATH, 0x01): (4, _bbs),
    (END_DEVICE_PATH_TYPE, END_INSTANCE_SUBTYPE): (0, _end_instance),
}


def _generic(node: Node) -> str:
    """DevPathToTextNodeGeneric: ``HardwarePath(subtype,HEX)`` or ``Path(type,subtype,HEX)``."""
    name = GENERIC_TYPE_NAMES.get(node.type)
    text = f"{name}({node.subtype}" if name else f"Path({node.type},{node.subtype}"
    if node.data:
        text += "," + _hexbytes(node.data)
    return text + ")"


def node_text(
    node: Node, *, display_only: bool = False, allow_shortcuts: bool = False
) -> str:
    """edk2's ``ConvertDeviceNodeToText(node, DisplayOnly, AllowShortcuts)``."""
    entry = _PRINTERS.get((node.type, node.subtype))
    if entry is None or len(node.data) < entry[0]:
        return _generic(node)
    return entry[1](node, display_only, allow_shortcuts)


def render_nodes(nodes: Sequence[Node], display_only: bool, shortcuts: bool) -> str:
    """The text of a flat list of nodes (End-Instance nodes print ``,``), up to an
    End-Entire node: what :func:`fwtools.formats.efi.devicepath.device_path_text` joins."""
    out = ""
    for node in nodes:
        if node.is_end_entire:
            break
        if out and not node.is_end_instance:
            out += "/"
        out += node_text(node, display_only=display_only, allow_shortcuts=shortcuts)
    return out


__all__ = ["node_text", "render_nodes"]
