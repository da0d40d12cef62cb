"""Device paths: edk2's own text for real and crafted paths, corpus round trips, builders,
errors with offsets, and fuzzing.

Oracle (not fwtools): edk2 itself. ``EDK2_ORACLE`` was captured by booting Debian's OVMF
in QEMU (q35, ``OVMF_CODE_4M.fd`` with a blank ``OVMF_VARS_4M.fd``) with an ESP whose
``startup.nsh`` stored crafted load options with ``setvar DriverNNNN -nv -rt -bs =H<hex>``
and printed them with ``bcfg driver dump -v`` / ``bcfg boot dump -v`` (the shell's
``ConvertDevicePathToText(path, TRUE, FALSE)``: display-only form), and from the boot
manager's own lines ``BdsDxe: failed to load Boot0003 "..." from <text>`` (full form),
with SATA, NVMe, virtio-scsi, virtio-blk, USB disks and a virtio-net NIC (``restrict=on``,
``romfile=`` so OVMF's network stack makes the PXE/HTTP entries). "2025.02" is trixie's
ovmf 2025.02-8, "2022.11" bookworm's 2022.11-6+deb12u2. The hex is the Boot####/Driver####
variable read back from the VARS file afterwards.

Also from edk2: the vectors of its DevicePathLib unit test
(``MdePkg/Test/UnitTest/Library/DevicePathLib/TestDevicePathStringConversions.c``).
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path
from typing import Final

import pytest
from corpus.params import need, populated_stores
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwtools.errors import ParseError, TruncatedError, UsageError
from fwtools.formats.efi import guids
from fwtools.formats.efi.devicepath import (
    DevicePathNode,
    build_file_path,
    build_hd_file_path,
    device_path_list_to_bytes,
    device_path_text,
    device_path_to_bytes,
    file_path_node,
    hard_drive_node,
    node_text,
    parse_device_path,
    parse_device_path_list,
    uri_node,
)
from fwtools.formats.efi.loadoption import LoadOption
from fwtools.formats.varstore.store import VariableStore

STORES: Final = populated_stores(
    "*/amd64/ovmf/usr/share/OVMF/OVMF*_VARS*.fd",
    "*/all/qemu-efi-aarch64/usr/share/AAVMF/AAVMF*_VARS*.fd",
)
CONSOLES: Final = ("ConIn", "ConOut", "ErrOut", "ConInDev", "ConOutDev", "ErrOutDev")

EDK2_ORACLE: Final = [
    ('bcfg 2025.02', True, 'Driver0000',
     "010000002c006d0075006c0074006900000002010c00d041030a0000000001010600011f7f010400"
     "02010c00d041030a000000000101060000027fff0400",
     'PciRoot(0x0)/Pci(0x1F,0x1),/PciRoot(0x0)/Pci(0x2,0x0)'),
    ('bcfg 2025.02', True, 'Driver0001',
     "010000001b00760065006e00680077000000010417004b7d98d31a975f438caf4967eb6272410102"
     "ab7fff0400",
     'VenHw(D3987D4B-971A-435F-8CAF-4967EB627241,0102AB)'),
    ('bcfg 2025.02', True, 'Driver0002',
     "010000001800610074006100000002010c00d041030a0000000003010800010103007fff0400",
     'PciRoot(0x0)/Ata(0x3)'),
    ('bcfg 2025.02', True, 'Driver0003',
     "0100000050006900700076003400000002010c00d041030a00000000030b25005254001234560000"
     "00000000000000000000000000000000000000000000000001030c1b000a00020f0a000202440043"
     "001100000a000202ffffff007fff0400",
     'PciRoot(0x0)/MAC(525400123456,0x1)/IPv4(10.0.2.2)'),
    ('bcfg 2025.02', True, 'Driver0004',
     "01000000400069007000760036000000030d3c00000102030405060708090a0b0c0d0e0f10111213"
     "1415161718191a1b1c1d1e1f0100020006000140202122232425262728292a2b2c2d2e2f7fff0400",
     'IPv6(1011:1213:1415:1617:1819:1A1B:1C1D:1E1F)'),
    ('bcfg 2025.02', True, 'Driver0005',
     "010000002100750072006900000003181d00687474703a2f2f3139322e302e322e312f626f6f742e"
     "6566697fff0400",
     'Uri(http://192.0.2.1/boot.efi)'),
    ('bcfg 2025.02', True, 'Driver0006',
     "010000004000680064006d0062007200000004012a00010000003f00000000000000001000000000"
     "0000785634120000000000000000000000000101040412005c0078002e0065006600690000007fff"
     "0400",
     'HD(1,MBR,0x12345678)/\\x.efi'),
    ('bcfg 2025.02', True, 'Driver0007',
     "010000001c006300640072006f006d00000004021800010000000001000000000000000200000000"
     "00007fff0400",
     'CDROM(0x1)'),
    ('bcfg 2025.02', True, 'Driver0008',
     "010000002c00610063007000690065007800000002022800000000000000000000000000504e5042"
     "304330005549443030303000504e5030303031007fff0400",
     'AcpiEx(PNPB0C0,PNP0001,UID0000)'),
    ('bcfg 2025.02', True, 'Driver0009',
     "010000001c006100630070006900650078007000000002021800d041aaaa00000000000000000055"
     "4944303000007fff0400",
     'AcpiExp(PNPAAAA,0,UID00)'),
    ('bcfg 2025.02', True, 'Driver000A',
     "010000001400610063007000690065007800700063006900000002021000d041030a07000000d041"
     "030a7fff0400",
     'PciRoot(0x7)'),
    ('bcfg 2025.02', True, 'Driver000B',
     "0100000026006100630070006900610064007200000002010c00d041030a0000000001010600011f"
     "020310000001018000020180070000007fff0400",
     'PciRoot(0x0)/Pci(0x1F,0x1)/AcpiAdr(0x80010100,0x80010200,0x7)'),
    ('bcfg 2025.02', True, 'Driver000C',
     "0100000034006100630070006900680069006400000002010c00785634120300000002010c00d041"
     "03030000000002010c00d04101050100000002010c00d041c0b0010000007fff0400",
     'Acpi(0x12345678,0x3)/Acpi(PNP0303,0x0)/Serial(0x1)/Acpi(PNPB0C0,0x1)'),
    ('bcfg 2025.02', True, 'Driver000D',
     "01000000190075006e006b006e006f0077006e00000001770600010242010500aa04300400050906"
     "0000117fff0400",
     'HardwarePath(119,0102)/Path(66,1,AA)/MediaPath(48)/BbsPath(9,0011)'),
    ('bcfg 2025.02', True, 'Driver000E',
     "010000002a0075006100720074000000030e1300000000000000000000000000000907030e130000"
     "00000080250000000000000702037fff0400",
     'Uart(DEFAULT,DEFAULT,x,x)/Uart(9600,7,E,2)'),
    ('bcfg 2025.02', True, 'Driver000F',
     "010000003f007500730062000000030f0b00f4460100080650030f0b0001000200fe0103030f0b00"
     "01000200420103031014000000f4460100530045005200310000000305060003007fff0400",
     'UsbMassStorage(0x46F4,0x1,0x6,0x50)/UsbDeviceFirmwareUpdate(0x1,0x2,0x3)/UsbClass(0x1,0x2,0x42,0x1,0x3)/UsbWwid(0x46F4,0x1,0x0,"SER1")/USB(0x3,0x0)'),
    ('bcfg 2025.02', True, 'Driver0010',
     "01000000280069007300630073006900000003132400000002100807060504030201010069716e2e"
     "323030342d30312e6f72673a78007fff0400",
     'iSCSI(iqn.2004-01.org:x,0x1,0x0807060504030201,CRC32C,None,CHAP_UNI,TCP)'),
    ('bcfg 2025.02', True, 'Driver0011',
     "010000003c006d006900730063000000031406002a00031f250000c0000235000000000000000000"
     "000000c633640100000000000000000000000005010d00020001014469736b007fff0400",
     'Vlan(42)/Dns(192.0.2.53,198.51.100.1)/BBS(HD,Disk)'),
    ('bcfg 2025.02', True, 'Driver0012',
     "0100000083006d0065006400690061000000040926000010000000000000ff1f0000000000005a53"
     "ab77fc454b625560f7b281d1f96e0200040818000000000010000000000000002000000000000000"
     "04051400215b4e965964d2118e3900a0c969723b010318000b0000000000c0ff00000000ffffffff"
     "00000000010508000200000001060d00010000d0fe000000007fff0400",
     'VirtualDisk(0x1000,0x1FFF,2)/Offset(0x10,0x20)/Media(964E5B21-6459-11D2-8E39-00A0C969723B)/MemoryMapped(0xB,0xFFC00000,0xFFFFFFFF)/Ctrl(0x2)/BMC(0x1,0xFED00000)'),
    ('bcfg 2025.02', True, 'Driver0013',
     "01000000940066006100620072006900630000000306080009000000030318000000000008070605"
     "04030201100000000000000003151800000000000102030405060708090a0b0c0d0e0f1003161800"
     "000102030405060708090a0b0c0d0e0f120005000304100000000000887766554433221103093000"
     "01000000000102030405060708090a0b0c0d0e0f0100000000000000020000000000000003000000"
     "000000007fff0400",
     'I2O(0x9)/Fibre(0x102030405060708,0x10)/FibreEx(0x0102030405060708,0x090A0B0C0D0E0F10)/SasEx(0x0001020304050607,0x08090A0B0C0D0E0F,0x5,SATA,Internal,Direct,0x1)/I1394(1122334455667788)/Infiniband(0x1,03020100-0504-0706-0809-0A0B0C0D0E0F,0x1,0x2,0x3)'),
    ('bcfg 2025.02', True, 'Driver0014',
     "01000000740066006c006100730068000000031906000102031a050003031d050004031b0a000001"
     "02030405031c24006d79737369640000000000000000000000000000000000000000000000000000"
     "031e0b0000010203040501031105000503120a000100ffff00000302080001000200031710000100"
     "000001020304050607087fff0400",
     'UFS(0x1,0x2)/SD(0x3)/eMMC(0x4)/Bluetooth(000102030405)/Wi-Fi(myssid)/BluetoothLE(000102030405,0x01)/Unit(0x5)/Sata(0x1,0xFFFF,0x0)/Scsi(0x1,0x2)/NVMe(0x1,08-07-06-05-04-03-02-01)'),
    ('bcfg 2025.02', True, 'Driver0015',
     "010000005c00760065006e0064006f0072000000030a18009d9a49372f54894ca02635da142094e4"
     "010000000403140011111111222233334444555555555555030a2c00b4dd87d48b00d911afdc0010"
     "83ffca4d0000000000500000000000000000000000000000120103007fff0400",
     'VenMsg(37499A9D-542F-4C89-A026-35DA142094E4,01000000)/VenMedia(11111111-2222-3333-4444-555555555555)/VenMsg(D487DDB4-008B-11D9-AFDC-001083FFCA4D,000000000050000000000000000000000000000012010300)'),
    ('bcfg 2025.02', True, 'Boot0000',
     "090100002c0055006900410070007000000004071400c9bdb87cebf8344faaea3ee4af6516a10406"
     "140021aa2c4614760345836e8ab6f46623317fff0400",
     'Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(462CAA21-7614-4503-836E-8AB6F4662331)'),
    ('bcfg 2025.02', True, 'Boot0001',
     "01000000200055004500460049002000510045004d00550020004800410052004400440049005300"
     "4b00200051004d00300030003000300031002000000002010c00d041030a0000000001010600021f"
     "03120a000000ffff00007fff04004eac0881119f594d850ee21a522c59b2",
     'PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0)'),
    ('bcfg 2025.02', True, 'Boot0002',
     "010000002c00450046004900200049006e007400650072006e0061006c0020005300680065006c00"
     "6c00000004071400c9bdb87cebf8344faaea3ee4af6516a10406140083a5047c3e9e1c4fad65e052"
     "68d0b4d17fff0400",
     'Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)'),
    ('BdsDxe 2022.11', False, 'Boot0001',
     "01000000200055004500460049002000510045004d00550020004800410052004400440049005300"
     "4b00200051004d00300030003000300031002000000002010c00d041030a0000000001010600021f"
     "03120a000000ffff00007fff04004eac0881119f594d850ee21a522c59b2",
     'PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0)'),
    ('BdsDxe 2022.11', False, 'Boot0002',
     "010000003b005500450046004900200050005800450076003400200028004d00410043003a003500"
     "320035003400300030003100320033003400350036002900000002010c00d041030a000000000101"
     "06000002030b25005254001234560000000000000000000000000000000000000000000000000000"
     "017fff04004eac0881119f594d850ee21a522c59b2",
     'PciRoot(0x0)/Pci(0x2,0x0)/MAC(525400123456,0x1)'),
    ('BdsDxe 2022.11', False, 'Boot0003',
     "0100000056005500450046004900200050005800450076003400200028004d00410043003a003500"
     "32003500340030003000310032003300340035003600290020003200000002010c00d041030a0000"
     "0000010106000002030b250052540012345600000000000000000000000000000000000000000000"
     "0000000001030c1b0000000000000000000000000000000000000000000000007fff04004eac0881"
     "119f594d850ee21a522c59b2",
     'PciRoot(0x0)/Pci(0x2,0x0)/MAC(525400123456,0x1)/IPv4(0.0.0.0,0x0,DHCP,0.0.0.0,0.0.0.0,0.0.0.0)'),
    ('BdsDxe 2022.11', False, 'Boot0004',
     "0100000077005500450046004900200050005800450076003600200028004d00410043003a003500"
     "320035003400300030003100320033003400350036002900000002010c00d041030a000000000101"
     "06000002030b25005254001234560000000000000000000000000000000000000000000000000000"
     "01030d3c000000000000000000000000000000000000000000000000000000000000000000000000"
     "0000000040000000000000000000000000000000007fff04004eac0881119f594d850ee21a522c59"
     "b2",
     'PciRoot(0x0)/Pci(0x2,0x0)/MAC(525400123456,0x1)/IPv6(0000:0000:0000:0000:0000:0000:0000:0000,0x0,Static,0000:0000:0000:0000:0000:0000:0000:0000,0x40,0000:0000:0000:0000:0000:0000:0000:0000)'),
    ('BdsDxe 2022.11', False, 'Boot0005',
     "010000005a0055004500460049002000480054005400500076003400200028004d00410043003a00"
     "3500320035003400300030003100320033003400350036002900000002010c00d041030a00000000"
     "010106000002030b2500525400123456000000000000000000000000000000000000000000000000"
     "000001030c1b000000000000000000000000000000000000000000000000031804007fff04004eac"
     "0881119f594d850ee21a522c59b2",
     'PciRoot(0x0)/Pci(0x2,0x0)/MAC(525400123456,0x1)/IPv4(0.0.0.0,0x0,DHCP,0.0.0.0,0.0.0.0,0.0.0.0)/Uri()'),
    ('BdsDxe 2022.11', False, 'Boot0006',
     "010000007b0055004500460049002000480054005400500076003600200028004d00410043003a00"
     "3500320035003400300030003100320033003400350036002900000002010c00d041030a00000000"
     "010106000002030b2500525400123456000000000000000000000000000000000000000000000000"
     "000001030d3c00000000000000000000000000000000000000000000000000000000000000000000"
     "0000000000004000000000000000000000000000000000031804007fff04004eac0881119f594d85"
     "0ee21a522c59b2",
     'PciRoot(0x0)/Pci(0x2,0x0)/MAC(525400123456,0x1)/IPv6(0000:0000:0000:0000:0000:0000:0000:0000,0x0,Static,0000:0000:0000:0000:0000:0000:0000:0000,0x40,0000:0000:0000:0000:0000:0000:0000:0000)/Uri()'),
    ('BdsDxe 2022.11', False, 'Boot0007',
     "010000002c00450046004900200049006e007400650072006e0061006c0020005300680065006c00"
     "6c00000004071400c9bdb87cebf8344faaea3ee4af6516a10406140083a5047c3e9e1c4fad65e052"
     "68d0b4d17fff0400",
     'Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)'),
    ('BdsDxe 2022.11', False, 'Boot0001',
     "01000000260055004500460049002000510045004d00550020004e0056004d006500200043007400"
     "72006c0020006400650061006400620065006500660020003100000002010c00d041030a00000000"
     "010106000002031710000100000000000000000000007fff04004eac0881119f594d850ee21a522c"
     "59b2",
     'PciRoot(0x0)/Pci(0x2,0x0)/NVMe(0x1,00-00-00-00-00-00-00-00)'),
    ('BdsDxe 2022.11', False, 'Boot0002',
     "010000001e0055004500460049002000510045004d0055002000510045004d005500200048004100"
     "520044004400490053004b002000000002010c00d041030a00000000010106000003030208000000"
     "00007fff04004eac0881119f594d850ee21a522c59b2",
     'PciRoot(0x0)/Pci(0x3,0x0)/Scsi(0x0,0x0)'),
    ('BdsDxe 2022.11', False, 'Boot0003',
     "010000001600550045004600490020004d0069007300630020004400650076006900630065000000"
     "02010c00d041030a000000000101060000047fff04004eac0881119f594d850ee21a522c59b2",
     'PciRoot(0x0)/Pci(0x4,0x0)'),
    ('BdsDxe 2022.11', False, 'Boot0004',
     "010000001c0055004500460049002000510045004d0055002000510045004d005500200055005300"
     "42002000480041005200440044005200490056004500200031002d0030003000300030003a003000"
     "30003a00300035002e0030002d003100000002010c00d041030a0000000001010600000503050600"
     "00007fff04004eac0881119f594d850ee21a522c59b2",
     'PciRoot(0x0)/Pci(0x5,0x0)/USB(0x0,0x0)'),
    ('bcfg 2022.11 (HD in full form)', False, 'Boot0007',
     "010000007e006600770074006f006f006c00730020007400650073007400000002010c00d041030a"
     "0000000001010600021f03120a000000ffff000004012a0001000000000800000000000000400100"
     "000000001b99840cf7227f4ba8d245b6ed1028630202040434005c004500460049005c0064006500"
     "6200690061006e005c007300680069006d007800360034002e0065006600690000007fff0400",
     'PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0)/HD(1,GPT,0C84991B-22F7-4B7F-A8D2-45B6ED102863,0x800,0x14000)/\\EFI\\debian\\shimx64.efi'),
]


def _records(path: Path) -> list[tuple[str, uuid.UUID, bytes]]:
    """(name, guid, data) of every readable record of a store, live or not (the corpus
    stores keep earlier ConIn/ConOut/BootOrder/Boot#### versions in deleted records)."""
    store = VariableStore.parse(path.read_bytes())
    records = [
        (r.variable.name, r.variable.guid, r.variable.data)
        for r in store.records
        if r.variable is not None
    ]
    assert records
    return records


@pytest.mark.parametrize(("source", "display_only", "name", "hex_data", "text"), EDK2_ORACLE)
def test_text_matches_edk2(
    source: str, display_only: bool, name: str, hex_data: str, text: str
) -> None:
    data = bytes.fromhex(hex_data)
    option = LoadOption.parse(data)
    assert option.to_bytes() == data
    # bcfg and BdsDxe print the first device path of the FilePathList.
    assert device_path_text(option.device_paths[0], display_only=display_only) == text


def test_oracle_covers_many_node_kinds() -> None:
    kinds = set()
    for *_rest, hex_data, _text in EDK2_ORACLE:
        for path in LoadOption.parse(bytes.fromhex(hex_data)).device_paths:
            kinds.update((n.type, n.subtype) for n in path)
    assert len(kinds) >= 50


def _node(node_type: int, subtype: int, body: bytes) -> DevicePathNode:
    return DevicePathNode(node_type, subtype, body)


# TestDevicePathStringConversions.c (edk2 2023): ConvertDeviceNodeToText(node, FALSE, FALSE).
EDK2_UNIT_TEST_NODES: Final = [
    (_node(1, 1, bytes([0x2, 0x0])), "Pci(0x0,0x2)"),
    (_node(2, 1, struct.pack("<II", 0x0A0341D0, 0)), "PciRoot(0x0)"),
    (_node(2, 1, struct.pack("<II", 0xB0C041D0, 1)), "Acpi(PNPB0C0,0x1)"),
    (
        _node(2, 2, struct.pack("<III", 0, 0, 0) + b"PNPB0C0\0PNP0001\0UID0000\0"),
        "AcpiEx(@@@0000,@@@0000,0x0,PNPB0C0,UID0000,PNP0001)",
    ),
    (
        _node(2, 2, struct.pack("<III", 0, 2, 0) + b"PNPB0\0\0\0"),
        "AcpiEx(@@@0000,@@@0000,0x2,PNPB0,,)",
    ),
    (_node(2, 2, struct.pack("<III", 0xAAAA41D0, 0, 0) + b"\0UID00\0\0"),
     "AcpiExp(PNPAAAA,0,UID00)"),
    (_node(2, 2, struct.pack("<III", 0xAAAA41D0, 0, 0xAADD41D0) + b"\0UID00\0\0"),
     "AcpiExp(PNPAAAA,PNPAADD,UID00)"),
]


@pytest.mark.parametrize(("node", "text"), EDK2_UNIT_TEST_NODES)
def test_edk2_unit_test_vectors(node: DevicePathNode, text: str) -> None:
    assert node.text == text
    assert parse_device_path(device_path_to_bytes([[node]])) == [[node]]


def test_edk2_unit_test_path() -> None:
    data = bytes.fromhex(
        "02010c00d041030a00000000" "0101060000 02".replace(" ", "")
        + "010106000000" "03050600" "0002" "7fff0400"
    )
    assert device_path_text(data) == "PciRoot(0x0)/Pci(0x2,0x0)/Pci(0x0,0x0)/USB(0x0,0x2)"


def test_shortcuts_and_display_forms() -> None:
    ansi = _node(3, 10, uuid.UUID("e0c14753-f9be-11d2-9a0c-0090273fc14d").bytes_le)
    assert ansi.text == "VenMsg(E0C14753-F9BE-11D2-9A0C-0090273FC14D)"
    assert ansi.to_text(allow_shortcuts=True) == "VenPcAnsi()"
    utf8 = _node(3, 10, uuid.UUID("ad15a0d6-8bec-4acf-a073-d01de77e2d88").bytes_le)
    assert utf8.to_text(allow_shortcuts=True) == "VenUtf8()"
    flow = _node(3, 10, uuid.UUID("37499a9d-542f-4c89-a026-35da142094e4").bytes_le
                 + struct.pack("<I", 2))
    assert flow.to_text(allow_shortcuts=True) == "UartFlowCtrl(XonXoff)"
    ata = _node(3, 1, struct.pack("<BBH", 0, 1, 0))
    assert ata.text == "Ata(Primary,Slave,0x0)"
    assert ata.to_text(display_only=True) == "Ata(0x0)"
    bbs = _node(5, 1, struct.pack("<HH", 3, 0) + b"CD\0")
    assert bbs.text == "BBS(CDROM,CD,0x0)"


def test_multi_instance_text_and_round_trip() -> None:
    a = [_node(2, 1, struct.pack("<II", 0x0A0341D0, 0)), _node(1, 1, bytes([0, 1]))]
    b = [_node(3, 5, bytes([1, 0]))]
    data = device_path_to_bytes([a, b])
    assert parse_device_path(data) == [a, b]
    # edk2's separator check looks at the terminator, so "/" follows the ",".
    assert device_path_text(data) == "PciRoot(0x0)/Pci(0x1,0x0),/USB(0x1,0x0)"
    assert device_path_text([a, b]) == device_path_text(data)
    assert parse_device_path(bytes.fromhex("7fff0400")) == [[]]


def test_unknown_and_short_nodes_print_generically() -> None:
    assert _node(0x42, 7, b"\x01\xab").text == "Path(66,7,01AB)"
    assert _node(3, 0x7E, b"").text == "Msg(126)"
    # A PCI node with a 1-byte body: edk2 would read past it; we print it generically.
    assert _node(1, 1, b"\x01").text == "HardwarePath(1,01)"
    assert node_text(_node(4, 1, b"\x00" * 10)) == "MediaPath(1,00000000000000000000)"


@pytest.mark.parametrize("path", STORES)
def test_corpus_console_paths(path: Path | None) -> None:
    seen = 0
    for name, guid, data in _records(need(path)):
        if guid != guids.EFI_GLOBAL_VARIABLE or name not in CONSOLES:
            continue
        instances = parse_device_path(data, base=0x1000)
        assert device_path_to_bytes(instances) == data
        assert instances and all(instances)
        assert all(node.offset >= 0x1000 for inst in instances for node in inst)
        text = device_path_text(instances)
        assert text.count(",/") == len(instances) - 1
        assert "Path(" not in text  # every node of a real console path has a printer
        seen += 1
    assert seen >= 3


@pytest.mark.parametrize("path", STORES)
def test_corpus_ui_app_entry(path: Path | None) -> None:
    records = _records(need(path))
    boot0000 = next(d for n, g, d in records if n == "Boot0000" and g == guids.EFI_GLOBAL_VARIABLE)
    text = LoadOption.parse(boot0000).file_path_text
    # bcfg boot dump on OVMF prints Fv(7CB8BDC9-...)/FvFile(462CAA21-...) for UiApp
    # (EDK2_ORACLE); ArmVirtQemu's DXE FV has another name.
    fv = "7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1" if "OVMF" in path.name else (  # type: ignore[union-attr]
        "64074AFE-340A-4BE6-94BA-91B5B4D0F71E"
    )
    assert text == f"Fv({fv})/FvFile(462CAA21-7614-4503-836E-8AB6F4662331)"


def test_errors_carry_offsets() -> None:
    with pytest.raises(ParseError) as info:
        parse_device_path(bytes.fromhex("01010300"), base=0x100)
    assert info.value.offset == 0x102 and "smaller than" in str(info.value)
    with pytest.raises(TruncatedError) as trunc:
        parse_device_path(bytes.fromhex("0101060001"), base=0x100)
    assert trunc.value.offset == 0x102
    with pytest.raises(TruncatedError):
        parse_device_path(bytes.fromhex("010106000100"))  # no End node
    with pytest.raises(ParseError, match="after the End"):
        parse_device_path(bytes.fromhex("7fff040000"))
    with pytest.raises(ParseError, match="End node Length"):
        parse_device_path(bytes.fromhex("7fff050000"))
    with pytest.raises(TruncatedError):
        parse_device_path(b"")


def test_builders() -> None:
    short = build_file_path("EFI/debian/shimx64.efi")
    assert device_path_text(short) == "\\EFI\\debian\\shimx64.efi"
    assert parse_device_path(short)[0][0].file_path == "\\EFI\\debian\\shimx64.efi"
    hd = build_hd_file_path(1, 2048, 1048576, "0c84991b-22f7-4b7f-a8d2-45b6ed102863",
                            "\\EFI\\debian\\shimx64.efi")
    assert device_path_text(hd) == (
        "HD(1,GPT,0C84991B-22F7-4B7F-A8D2-45B6ED102863,0x800,0x100000)/"
        "\\EFI\\debian\\shimx64.efi"
    )
    # The bytes firmware wrote for the same kind of path (EDK2_ORACLE, bcfg boot add):
    # HD node 42 bytes, MBRType 2, SignatureType 2.
    node = hard_drive_node(1, 0x800, 0x14000, uuid.UUID("0c84991b-22f7-4b7f-a8d2-45b6ed102863"))
    written = next(h for src, _d, _n, h, _t in EDK2_ORACLE if src.startswith("bcfg 2022.11"))
    assert node.to_bytes().hex() in written
    assert file_path_node("\\EFI\\debian\\shimx64.efi").to_bytes().hex() in written
    assert uri_node("http://x/y.efi").text == "Uri(http://x/y.efi)"
    with pytest.raises(UsageError):
        file_path_node("a\0b")
    with pytest.raises(UsageError):
        file_path_node("\U0001f600.efi")
    with pytest.raises(UsageError):
        hard_drive_node(1, 0, 1, "not-a-guid")
    with pytest.raises(UsageError):
        hard_drive_node(-1, 0, 1, uuid.uuid4())
    with pytest.raises(UsageError):
        uri_node("http://ä")


def test_path_list_round_trip() -> None:
    first = parse_device_path(build_file_path("\\a.efi"))[0]
    second = [uri_node("http://x/")]
    data = device_path_list_to_bytes([first, second])
    assert parse_device_path_list(data) == [first, second]
    assert parse_device_path_list(b"") == []


# -- fuzzing ------------------------------------------------------------------------------

_nodes = st.builds(
    DevicePathNode,
    st.integers(0, 0x7E) | st.sampled_from([1, 2, 3, 4, 5]),
    st.integers(0, 0x30) | st.integers(0, 255),
    st.binary(max_size=80),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_fuzz_parse_only_parse_errors(data: bytes) -> None:
    try:
        instances = parse_device_path(data)
    except ParseError:
        return
    assert device_path_to_bytes(instances) == data
    device_path_text(instances)
    device_path_text(instances, display_only=True, allow_shortcuts=True)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_nodes, max_size=5), min_size=1, max_size=3))
def test_fuzz_structured_round_trip(instances: list[list[DevicePathNode]]) -> None:
    data = device_path_to_bytes(instances)
    assert parse_device_path(data) == instances
    for display in (False, True):
        for shortcuts in (False, True):
            device_path_text(data, display_only=display, allow_shortcuts=shortcuts)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=4, max_size=120), st.integers(0, 3))
def test_fuzz_mutated_real_paths(noise: bytes, which: int) -> None:
    _s, _d, _n, hex_data, _t = EDK2_ORACLE[which * 7 % len(EDK2_ORACLE)]
    data = bytearray(bytes.fromhex(hex_data))
    for i, b in enumerate(noise):
        data[(i * 7 + b) % len(data)] ^= b
    try:
        option = LoadOption.parse(bytes(data))
    except ParseError:
        return
    assert option.to_bytes() == bytes(data)
    assert len(option.path_texts) == len(option.device_paths)
